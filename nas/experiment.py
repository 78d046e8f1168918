"""A whole search from one `SearchConfig`: build its parts, run it, write its run directory."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tqdm import tqdm

from nas.config import SearchConfig
from nas.data import DATASETS, load_dataset
from nas.evaluators import SharedWeightsEvaluator, StandaloneEvaluator
from nas.rundir import RunDir
from nas.search import Record, search, top
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
    )


def run_search(config: SearchConfig, *, overwrite=False, progress=True):
    """Runs the search `config` describes; returns its records and the top (record, text)s.

    With ``config.workers >= 1`` the architectures are evaluated on Ray workers
    (`nas.distributed`), asynchronously unless ``config.sync``; otherwise in this process.
    """
    started_ray = False
    if config.workers:
        from nas.distributed import init_ray

        started_ray = init_ray(config)  # before JAX initialises a backend in this process
    try:
        return _run(config, overwrite=overwrite, progress=progress)
    finally:
        if started_ray:
            import ray

            ray.shutdown()


def _run(config: SearchConfig, *, overwrite: bool, progress: bool):
    space = load_space(config.space, channels=config.channels, cells_per_stage=config.cells)
    run_dir = RunDir(config.out, dataclasses.asdict(config), overwrite=overwrite)
    strategy = make_strategy(config, space)
    batch, asynchronous, executor = config.batch, False, None
    if config.workers:
        from nas.distributed import start_workers

        if config.dataset not in DATASETS and not config.dataset.endswith(".npz"):
            load_dataset(config.dataset)  # raises the error that names the valid datasets
        cache = config.compile_cache or str(Path(config.out).resolve() / "jax_cache")
        executor, loss = start_workers(config, cache_dir=cache)
        if loss is not None:
            run_dir.log("warmup", loss=loss, steps=config.warmup_steps, where="worker")
        evaluator, asynchronous = executor, not config.sync
        if config.sync:
            batch = max(config.batch, config.workers * config.in_flight)
    else:
        evaluator = make_evaluator(config, space, load_dataset(config.dataset))
        if hasattr(evaluator, "warmup"):
            with tqdm(
                total=config.warmup_steps, desc="warm-up", unit="step", disable=not progress
            ) as bar:
                loss = evaluator.warmup(on_step=lambda: bar.update(1))
            run_dir.log("warmup", loss=loss, steps=config.warmup_steps)
    bar = tqdm(total=config.budget, desc="search", unit="arch", disable=not progress)

    def on_record(record: Record, best: float):
        bar.update(1)
        bar.set_postfix(best=f"{best:.4f}", last=f"{record.score:.4f}")

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
        )
    finally:
        bar.close()
        if executor is not None:
            run_dir.log("workers", **executor.close())
    best = top(records, config.top)
    run_dir.write_results(
        {
            "space": space.name,
            "evaluations": len(records),
            "top": [{**r.to_json(), "architecture": space.to_json(r.arch)} for r in best],
        }
    )
    run_dir.close()
    return records, [(r, space.describe(r.arch)) for r in best]
