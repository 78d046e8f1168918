"""A whole search run for an experiment, reduced to its pick and what it cost."""

from __future__ import annotations

from pathlib import Path

from nas.config import SearchConfig
from nas.experiment import resume_search, run_search
from nas.rundir import read_events
from nas.search import top


def search_pick(config: SearchConfig) -> dict:
    """Runs the search `config` describes (resuming it when its run directory holds one that
    was interrupted); returns its best architecture, that one's score, the evaluations and the
    wall minutes, warm-up included."""
    run_dir = Path(config.out)
    if (run_dir / "config.json").exists() and not (run_dir / "results.json").exists():
        records, _ = resume_search(run_dir, progress=False)
    else:
        records, _ = run_search(config, overwrite=True, progress=False)
    (best,) = top(records, 1)
    events = read_events(run_dir / "events.jsonl")
    return {
        "arch": [int(d) for d in best.arch],
        "score": best.score,
        "evaluations": len(records),
        "minutes": max(e["time"] for e in events) / 60,
    }
