"""How strategy defaults were chosen: option grids scored on NAS-Bench-Graph's tuning datasets.

For each option setting of `strategy` in `GRIDS`, runs `seeds` seeded searches of `budget`
queries on each tuning dataset (cora, citeseer and arxiv only; the other datasets are kept for
checking that the chosen defaults generalise) and reports the mean validation regret of the
pick. The last line printed is a JSON object of the figures.

``python -m experiments.tune_strategies --set strategy=bayesopt``
"""

from __future__ import annotations

import dataclasses

import numpy as np

from experiments import entry
from experiments.compare_strategies import run_seed
from nas.evaluators import NasBenchGraphEvaluator
from nas.strategies import STRATEGIES

GRIDS = {
    "reinforce": [
        {"elite": 0, "draws": 1},  # the ENAS controller alone
        {"local": 0.0, "draws": 1},  # with priority queue training
        {"local": 0.0},  # and fresh draws
        {"local": 0.5},
        {"local": 0.8},
        {"local": 1.0},
        {"tournament": 1},
        {"tournament": 5},
        {"draws": 1},
        {"elite": 20},
    ],
    "bayesopt": [
        {},
        {"metric": "l1"},
        {"acquisition": "ucb"},
        {"acquisition": "thompson"},
        {"transform": "standardise"},
        {"initial": 5},
        {"initial": 20},
        {"neighbours": 3},
        {"neighbours": 3, "parents": 5},
        {"fit_steps": 30},
        {"encoding": "decisions"},
        {"neighbours": 3, "parents": 5, "initial": 20},
        {"neighbours": 3, "parents": 5, "initial": 20, "acquisition": "ucb"},
    ],
    "evolution": [
        {"population_size": 10, "tournament_size": 3},
        {"population_size": 20, "tournament_size": 5},
        {"population_size": 50, "tournament_size": 10},
    ],
}


@dataclasses.dataclass(frozen=True)
class Config:
    strategy: str = "reinforce"
    datasets: tuple[str, ...] = ("cora", "citeseer", "arxiv")
    budget: int = 100
    seeds: int = 20


QUICK = Config(datasets=("cora",), budget=6, seeds=1)


def run(config: Config) -> dict:
    if config.strategy not in GRIDS:
        raise ValueError(f"no grid for {config.strategy!r}; grids: {', '.join(GRIDS)}")
    evaluators = {d: NasBenchGraphEvaluator(d) for d in config.datasets}
    results = []
    for options in GRIDS[config.strategy]:
        regrets = {}
        for dataset, evaluator in evaluators.items():
            space = evaluator.space
            strategy = STRATEGIES[config.strategy](space, **options)
            best = evaluator.best().valid
            picks = []
            for seed in range(config.seeds):
                _, scores = run_seed(
                    config.strategy, strategy, space, evaluator, config.budget, seed
                )
                picks.append(np.nanmax(np.asarray(scores, np.float64)))
            regrets[dataset] = float(best - np.mean(picks))
        results.append(
            {"options": options, "regret": regrets, "mean": float(np.mean(list(regrets.values())))}
        )
        print(results[-1], flush=True)
    return {
        "strategy": config.strategy,
        "budget": config.budget,
        "seeds": config.seeds,
        "results": results,
    }


def main(argv=None) -> dict:
    return entry.main(__doc__.splitlines()[0], run, Config(), QUICK, argv)


if __name__ == "__main__":
    main()
