"""A whole search from one `SearchConfig`: build its parts, run it, write its run directory."""

from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path

from tqdm import tqdm

from nas import compile_cache
from nas.checkpoint import Checkpoints
from nas.config import SearchConfig, check_options
from nas.data import DATASETS, load_dataset
from nas.evaluators import SharedWeightsEvaluator, StandaloneEvaluator
from nas.parallel import use_cpu_devices
from nas.rundir import RunDir, read_json
from nas.search import Record, Resume, Tell, search, top
from nas.space import SearchSpace, load_space
from nas.strategies import STRATEGIES, Strategy
from nas.train import TrainConfig


def make_strategy(config: SearchConfig, space: SearchSpace) -> Strategy:
    """The configured strategy for `space`."""
    options = {
        "evolution": {"population_size": config.population, "tournament_size": config.tournament},
        "bayesopt": {"acquisition": config.acquisition, "initial": config.initial},
    }
    return STRATEGIES[config.strategy](space, **options.get(config.strategy, {}))


def make_evaluator(
    config: SearchConfig, space: SearchSpace, data, *, planned_evaluations: int | None = None
):
    """The configured evaluator for `space` on `data`.

    Args:
      planned_evaluations: evaluations the learning-rate schedule plans for (default: the
        budget; a Ray worker plans for its share).
    """
    train = TrainConfig(
        optimizer=config.optimizer,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        batch_size=config.batch_size,
        devices=config.devices,
    )
    if config.evaluator == "standalone":
        return StandaloneEvaluator(
            space, data, epochs=config.epochs, config=train, seed=config.seed
        )
    return SharedWeightsEvaluator(
        space,
        data,
        train_steps=config.train_steps,
        warmup_steps=config.warmup_steps,
        config=train,
        planned_evaluations=planned_evaluations or config.budget,
        seed=config.seed,
        scan_edges=config.scan_edges,
        scan_cells=config.scan_cells,
        branching=config.branching,
        sampling=config.warmup_sampling,
        score_by=config.score_by,
        few_shot=config.few_shot,
    )


def run_search(config: SearchConfig, *, overwrite=False, progress=True, resume=False):
    """Runs the search `config` describes; returns its records and the top (record, text)s.

    With ``config.workers >= 1`` the architectures are evaluated on Ray workers
    (`nas.distributed`), asynchronously unless ``config.sync``; otherwise in this process.
    The search is checkpointed every ``config.checkpoint_every`` evaluations.

    Args:
      resume: continue the search in ``config.out`` from its last checkpoint (see
        `resume_search`, which also checks the config against the run's own).
    """
    started_ray = False
    if config.workers:
        from nas.distributed import init_ray

        started_ray = init_ray(config)  # before JAX initialises a backend in this process
    try:
        return _run(config, overwrite=overwrite, progress=progress, resume=resume)
    finally:
        if started_ray:
            import ray

            ray.shutdown()


def resume_search(run_dir, options: dict | None = None, *, progress=True):
    """Continues the search in `run_dir` (stopped at any point) from its last checkpoint.

    Args:
      run_dir: the run directory of the search.
      options: options given again (from a command line); each must equal the run's own,
        but for `max_minutes`, which a resumed search may extend.

    Raises:
      ValueError: naming each option that differs from the run's, or what is wrong with the
        run's config.json.
    """
    config = read_config(run_dir)
    differ = [
        f"{name} (the run's {getattr(config, name)!r}, given {value!r})"
        for name, value in (options or {}).items()
        if name not in ("out", "max_minutes") and getattr(config, name) != value
    ]
    if differ:
        raise ValueError(
            f"{run_dir}: the options given differ from the run's own "
            f"({Path(run_dir) / 'config.json'}): " + "; ".join(differ)
        )
    limit = (options or {}).get("max_minutes", config.max_minutes)
    config = dataclasses.replace(config, out=str(run_dir), max_minutes=limit)
    return run_search(config, progress=progress, resume=True)


def read_config(run_dir) -> SearchConfig:
    """The options of the search in `run_dir` (its config.json).

    Raises:
      FileNotFoundError: there is no config.json.
      ValueError: naming the file and the option that is unknown or invalid.
    """
    path = Path(run_dir) / "config.json"
    saved = read_json(path, f"{run_dir} is not a run directory")
    check_options(saved, str(path))
    try:
        return SearchConfig(**saved)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def _run(config: SearchConfig, *, overwrite: bool, progress: bool, resume: bool):
    compile_cache.enable(config.compile_cache)  # before anything compiles
    use_cpu_devices(config.devices)  # before JAX starts its backend
    space = load_space(config.space, channels=config.channels, cells_per_stage=config.cells)
    run_dir = RunDir(config.out, dataclasses.asdict(config), overwrite=overwrite, resume=resume)
    strategy = make_strategy(config, space)
    batch, asynchronous, executor = config.batch, False, None
    start, logged = None, {}
    checkpoints = Checkpoints(run_dir.path / "checkpoints", every=config.checkpoint_every)
    if config.workers:
        from nas.distributed import start_workers

        if config.dataset not in DATASETS and not config.dataset.endswith(".npz"):
            load_dataset(config.dataset)  # raises the error that names the valid datasets
        cache = config.compile_cache  # None: each node's default folder
        if cache not in (None, compile_cache.OFF):  # the workers' working folder is not ours
            cache = str(Path(cache).expanduser().resolve())
        executor, loss = start_workers(config, cache_dir=cache)
        if loss is not None:
            run_dir.log("warmup", loss=loss, steps=config.warmup_steps, where="worker")
        evaluator, asynchronous = executor, not config.sync
        if config.sync:
            batch = max(config.batch, executor.slots)
    else:
        evaluator = make_evaluator(config, space, load_dataset(config.dataset))
    if resume:
        logged = logged_records(run_dir.events)
        start = checkpoints.restore(strategy, evaluator, logged=logged.keys())
        run_dir.log("resume", checkpoint=start and start.asked, logged=len(logged))
    if hasattr(evaluator, "warmup") and not evaluator.warmed_up:
        with tqdm(
            total=config.warmup_steps, desc="warm-up", unit="step", disable=not progress
        ) as bar:
            loss = evaluator.warmup(on_step=lambda: bar.update(1))
        run_dir.log("warmup", loss=loss, steps=config.warmup_steps)
    bar = tqdm(total=config.budget, desc="search", unit="arch", disable=not progress)

    so_far: list[Record] = []

    def on_record(record: Record, best: float):
        bar.update(1)
        bar.set_postfix(best=f"{best:.4f}", last=f"{record.score:.4f}")
        so_far.append(record)
        leaders = top(so_far, config.top)
        if not record.cached and any(r.index == record.index for r in leaders):
            run_dir.write_best(_results(space, leaders, len(so_far)))  # keep best.json current

    def out_of_time() -> bool:
        return run_dir.elapsed() >= 60 * config.max_minutes

    try:
        records = search(
            space,
            strategy,
            evaluator,
            budget=config.budget,
            seed=config.seed,
            batch=batch,
            run_dir=run_dir,
            on_record=on_record,
            asynchronous=asynchronous,
            checkpoints=checkpoints,
            resume=Resume(start, logged, logged_tells(run_dir.events)),
            stop=None if config.max_minutes is None else out_of_time,
        )
    finally:
        bar.close()
        if executor is not None:
            run_dir.log("workers", **executor.close())
        checkpoints.close()
    if len(records) < config.budget:
        run_dir.log("stopped", evaluations=len(records), max_minutes=config.max_minutes)
    best = top(records, config.top)
    run_dir.write_results(_results(space, best, len(records)))
    run_dir.close()
    return records, [(r, space.describe(r.arch)) for r in best]


def _results(space: SearchSpace, best: list[Record], evaluations: int) -> dict:
    """The content of results.json and best.json."""
    return {
        "space": space.name,
        "evaluations": evaluations,
        "top": [{**r.to_json(), "architecture": space.to_json(r.arch)} for r in best],
    }


def logged_tells(events: list[dict]) -> list[Tell]:
    """The ``tell`` events of an event log, in order. A tell logged without the count of
    architectures asked before it is placed right after the last ask logged before it."""
    tells, asked = [], 0
    for event in events:
        indices = event.get("indices")
        if not isinstance(indices, list) or not all(isinstance(i, int) for i in indices):
            continue
        if event["event"] == "ask" and indices:
            asked = max(asked, max(indices) + 1)
        elif event["event"] == "tell":
            at = event.get("asked")
            tells.append(Tell(at if isinstance(at, int) else asked, tuple(indices)))
    return tells


def logged_records(events: list[dict]) -> dict[int, Record]:
    """The evaluations of an event log, by index (the last one logged for an index); a
    malformed one is skipped with a warning (a resumed search evaluates it again)."""
    return {index: record for index, (record, _) in logged_evaluations(events).items()}


def logged_evaluations(events: list[dict]) -> dict[int, tuple[Record, float]]:
    """`logged_records`, each with the wall time of its event."""
    logged = {}
    for event in events:
        if event["event"] != "eval":
            continue
        try:
            record = Record.from_json(event)
        except (KeyError, TypeError, ValueError) as error:
            warnings.warn(
                f"event log: malformed evaluation {event} ({error!r}); skipped", stacklevel=3
            )
            continue
        time = event.get("time")
        logged[record.index] = (record, float(time) if isinstance(time, int | float) else math.nan)
    return logged
