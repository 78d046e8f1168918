"""A run directory read back for a report: its options, evaluations, results and retraining.

Works on a finished search and on one still running or killed: without results.json the top
architectures come from the event log.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from nas.experiment import logged_evaluations, read_config
from nas.rundir import read_events, read_json
from nas.search import Record, top
from nas.space import SearchSpace, load_space


@dataclasses.dataclass
class Run:
    """What a report shows of one search.

    Attributes:
      path: the run directory.
      config: its config.json as written.
      options: every option of the search: config.json over `SearchConfig`'s defaults.
      records: the evaluations in the order they were logged (completed).
      times: each evaluation's wall seconds since the search started.
      warmup_seconds: when the warm-up ended (0 without one).
      wall_seconds: the time of the last event.
      top: the best distinct architectures (results.json's, else ranked from the log).
      finished: whether the search wrote results.json.
      space: the search space, or None when it cannot be loaded (`space_error` says why).
      retrain: RUN_DIR/retrain/metrics.json, if the best architecture was retrained.
    """

    path: Path
    config: dict
    options: dict
    records: list[Record]
    times: list[float]
    warmup_seconds: float
    wall_seconds: float
    top: list[Record]
    finished: bool
    space: SearchSpace | None
    space_error: str | None
    retrain: dict | None


def load_run(path) -> Run:
    """Reads the run directory `path`.

    Raises:
      FileNotFoundError: config.json or events.jsonl is missing (naming the file).
      ValueError: a file is not valid JSON, or the event log holds no evaluation.
    """
    path = Path(path)
    config = read_json(path / "config.json", "not the run directory of a search")
    options = dataclasses.asdict(read_config(path))
    events_path = path / "events.jsonl"
    events = read_events(events_path)
    records, times = _evaluations(events)
    if not records:
        what = f"only {len(events)} other events" if events else "it is empty"
        raise ValueError(
            f"{events_path} holds no evaluations ({what}): the search has not logged one yet"
        )
    warmups = [e.get("time", 0.0) for e in events if e["event"] == "warmup"]
    results_path = path / "results.json"
    finished = results_path.exists()
    results = read_json(results_path) if finished else {}
    best = [Record.from_json(r) for r in results.get("top", [])] or top(records, options["top"])
    space, space_error = None, None
    try:
        space = load_space(
            options["space"], channels=options["channels"], cells_per_stage=options["cells"]
        )
    except Exception as error:  # a user's space file may fail in any way; the rest still reports
        space_error = f"{type(error).__name__}: {error}"
    metrics = path / "retrain" / "metrics.json"
    return Run(
        path=path,
        config=config,
        options=options,
        records=records,
        times=times,
        warmup_seconds=max(warmups, default=0.0),
        wall_seconds=max(e.get("time", 0.0) for e in events),
        top=best,
        finished=finished,
        space=space,
        space_error=space_error,
        retrain=read_json(metrics) if metrics.exists() else None,
    )


def _evaluations(events: list[dict]) -> tuple[list[Record], list[float]]:
    """The evaluations of an event log, one per index (the last logged), in log order."""
    logged = logged_evaluations(events).values()
    return [r for r, _ in logged], [t for _, t in logged]
