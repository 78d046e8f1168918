"""A whole search from one `SearchConfig`: build its parts, run it, write its run directory."""

from __future__ import annotations

import dataclasses

from tqdm import tqdm

from nas.config import SearchConfig
from nas.data import load_dataset
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


def make_evaluator(config: SearchConfig, space: SearchSpace, data):
    """The configured evaluator for `space` on `data`."""
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
        planned_evaluations=config.budget,
        seed=config.seed,
        scan_edges=config.scan_edges,
    )


def run_search(config: SearchConfig, *, overwrite=False, progress=True):
    """Runs the search `config` describes; returns its records and the top (record, text)s."""
    space = load_space(config.space, channels=config.channels, cells_per_stage=config.cells)
    data = load_dataset(config.dataset)
    run_dir = RunDir(config.out, dataclasses.asdict(config), overwrite=overwrite)
    evaluator = make_evaluator(config, space, data)
    strategy = make_strategy(config, space)
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
            batch=config.batch,
            run_dir=run_dir,
            on_record=on_record,
        )
    finally:
        bar.close()
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
