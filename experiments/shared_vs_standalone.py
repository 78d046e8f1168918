"""Shared weights against stand-alone training at equal wall time, the picks retrained.

For each seed, a shared-weights search (`strategy`, nb201 on digits, by default with the
evaluator options that rank best in `experiments.ranking`: fair warm-up and few-shot copies)
evaluates `budget` architectures; its wall time, warm-up included, is then given to random
search with stand-alone training (``--max-minutes``). Each search's pick is retrained from
scratch with the same recipe (`nas.retrain`, `retrain_seeds` seeds) and scored once on the
test split. Reports both sides' retrained test accuracy, how many architectures each search
evaluated, and whether any pick is a degenerate cell (`SearchSpace.is_degenerate`). Results
are kept per seed in `out/results.json`, so an interrupted run goes on where it stopped.

Run from the repository root: ``python -m experiments.shared_vs_standalone`` (``--quick`` for
a smoke run). The last line printed is a JSON object of the figures.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np

from experiments import entry
from experiments.cache import ResultCache
from experiments.pick import search_pick
from experiments.rank_metrics import mean_ci
from nas.config import SearchConfig
from nas.data import load_digits
from nas.retrain import RetrainConfig, retrain
from nas.space import load_space


@dataclasses.dataclass(frozen=True)
class Config:
    strategy: str = "bayesopt"
    budget: int = 100
    warmup_steps: int = 1000
    train_steps: int = 20
    warmup_sampling: str = "fair"
    few_shot: bool = True
    standalone_epochs: int = 3
    channels: int = 16
    cells: int = 5
    seeds: int = 3
    retrain_epochs: int = 30
    retrain_seeds: int = 3
    out: str = "experiments/results/shared_vs_standalone"


QUICK = Config(
    budget=4,
    warmup_steps=10,
    train_steps=2,
    standalone_epochs=1,
    channels=4,
    cells=1,
    seeds=1,
    retrain_epochs=1,
    retrain_seeds=2,
    out="",
)


def searches(config: Config, seed: int, runs: Path) -> dict:
    """The two searches of one seed: each one's pick, evaluations and minutes."""
    common = {"space": "nb201", "dataset": "digits", "seed": seed, "checkpoint_every": 0}
    common |= {"channels": config.channels, "cells": config.cells}
    shared = SearchConfig(
        strategy=config.strategy,
        evaluator="shared",
        budget=config.budget,
        warmup_steps=config.warmup_steps,
        train_steps=config.train_steps,
        warmup_sampling=config.warmup_sampling,
        few_shot=config.few_shot,
        out=str(runs / f"shared-{seed}"),
        **common,
    )
    picks = {"shared": search_pick(shared)}
    alone = SearchConfig(
        strategy="random",
        evaluator="standalone",
        budget=100_000,
        epochs=config.standalone_epochs,
        max_minutes=picks["shared"]["minutes"],
        out=str(runs / f"standalone-{seed}"),
        **common,
    )
    picks["standalone"] = search_pick(alone)
    return picks


def run(config: Config) -> dict:
    data = load_digits()
    space = load_space("nb201", channels=config.channels, cells_per_stage=config.cells)
    out = Path(config.out) if config.out else None
    cache = ResultCache(out / "results.json" if out else None, dataclasses.asdict(config))
    recipe = RetrainConfig(epochs=config.retrain_epochs, seeds=config.retrain_seeds)
    per_seed = []
    with tempfile.TemporaryDirectory() as scratch:
        runs = out / "runs" if out else Path(scratch)  # the search run directories
        for seed in range(config.seeds):
            name = f"seed {seed}"
            if name not in cache:
                picks = searches(config, seed, runs)
                for pick in picks.values():
                    metrics = retrain(space, pick["arch"], data, recipe, progress=False)
                    pick["test"] = [r["test"]["accuracy"] for r in metrics["runs"]]
                    pick["degenerate"] = space.is_degenerate(pick["arch"])
                    pick["describe"] = space.describe(pick["arch"])
                cache.put(name, picks)
            per_seed.append(cache[name])
    figures = {"seeds": config.seeds, "retrain_seeds": config.retrain_seeds}
    for side in ("shared", "standalone"):
        picks = [p[side] for p in per_seed]
        mean, half = mean_ci([np.mean(p["test"]) for p in picks])
        figures[side] = {
            "test_accuracy": round(mean, 4),
            "test_accuracy_ci95": None if half is None else round(half, 4),
            "seed_std": round(float(np.mean([np.std(p["test"], ddof=1) for p in picks])), 4),
            "evaluations": [p["evaluations"] for p in picks],
            "minutes": [round(p["minutes"], 2) for p in picks],
            "degenerate_picks": sum(p["degenerate"] for p in picks),
            "picks": [p["describe"] for p in picks],
        }
    figures["config"] = dataclasses.asdict(config)
    return figures


def main(argv=None) -> dict:
    return entry.main(__doc__.splitlines()[0], run, Config(), QUICK, argv)


if __name__ == "__main__":
    main()
