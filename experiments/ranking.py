"""How well shared-weight scores rank architectures, against training each one alone.

Takes `n_archs` nb201 architectures spread over the range of quality
(`experiments.ground_truth.covering_archs`), trains each stand-alone with `standalone_seeds`
seeds (the ground truth: their mean validation accuracy; cached, so reruns are cheap), then,
for each method in `METHODS` (options of `SharedWeightsEvaluator`) and each of
`supernet_seeds` seeds, warms a supernet up and scores every architecture exactly as a search
would, in a random order. Reports Kendall tau, Spearman rho and the top-5 / top-10 overlap
with 95% confidence intervals over the supernet seeds, and the ceiling: the Kendall tau
between stand-alone runs of different seeds. Writes `table.md` and `scatter.png` under `out`.

Run from the repository root: ``python -m experiments.ranking`` (``--quick`` for a smoke
run; ``--set methods=spos,fair`` for some methods). On CIFAR-shaped data, smaller:
``--set dataset=synthetic_cifar --set channels=8 --set cells_per_stage=1
--set standalone_epochs=5 --set out=experiments/results/ranking_cifar``. The last line printed
is a JSON object of the figures.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from experiments import entry
from experiments.cache import ResultCache
from experiments.ground_truth import Standalone, covering_archs, standalone_accuracies
from experiments.rank_metrics import agreement, mean_ci, seed_ceiling
from nas.data import load_dataset
from nas.evaluators import SharedWeightsEvaluator
from nas.train import TrainConfig
from search_spaces import nb201

# Each method: options of SharedWeightsEvaluator over BASELINE, uniform single-path sampling.
BASELINE = {"sampling": "uniform"}
METHODS = {
    "spos": {},  # uniform single-path warm-up, then each path trains and stays in the supernet
    "fair": {"sampling": "fair"},  # every op of every edge trains equally often in the warm-up
    "finetune": {"write_back": False},  # each path trains on a copy, dropped after scoring
    "frozen": {"train_steps": 0},  # scored with the warmed-up weights alone
    "long_warmup": {"warmup_steps": 3000},
    "val_128": {"score_samples": 128},  # scored on a third of the validation split
    "few_shot": {"few_shot": True},  # one supernet per op of the first edge, split mid-warm-up
    "fair_few_shot": {"sampling": "fair", "few_shot": True},
    "fair_few_shot_loss": {"sampling": "fair", "few_shot": True, "score_by": "loss"},
    "fair_few_shot_finetune": {"sampling": "fair", "few_shot": True, "write_back": False},
    "fair_few_shot_long": {"sampling": "fair", "few_shot": True, "warmup_steps": 3000},
}
METRICS = ("kendall_tau", "spearman_rho", "top5", "top10")


@dataclasses.dataclass(frozen=True)
class Config:
    dataset: str = "digits"  # a name `nas.data.load_dataset` knows
    n_archs: int = 50
    channels: int = 16
    cells_per_stage: int = 5
    standalone_epochs: int = 10
    standalone_seeds: int = 3
    warmup_steps: int = 1000
    train_steps: int = 20
    batch_size: int = 64
    supernet_seeds: int = 3
    methods: tuple[str, ...] = tuple(METHODS)
    seed: int = 0
    out: str = "experiments/results/ranking"  # "": write nothing


QUICK = Config(
    n_archs=6,
    channels=4,
    cells_per_stage=1,
    standalone_epochs=1,
    standalone_seeds=2,
    warmup_steps=10,
    train_steps=2,
    supernet_seeds=2,
    methods=("spos", "fair"),
    out="",
)


def shared_scores(
    space, data, archs, config: Config, options: dict, seed: int, order=None
) -> list[float]:
    """Shared-weight scores of `archs`: a warm-up, then each architecture as a search would
    evaluate it, in the given `order` of indices (default: as listed)."""
    settings = {"train_steps": config.train_steps, "warmup_steps": config.warmup_steps}
    shared = SharedWeightsEvaluator(
        space,
        data,
        config=TrainConfig(batch_size=config.batch_size),
        planned_evaluations=len(archs),
        seed=seed,
        **{**settings, **options},
    )
    shared.warmup()
    scores = [0.0] * len(archs)
    for i in range(len(archs)) if order is None else order:
        scores[i] = shared.evaluate(archs[i]).score
    return scores


def score_cache(space, archs, config: Config) -> ResultCache:
    """Where each method's shared-weight scores are kept (under `out`, if set)."""
    fields = ("channels", "cells_per_stage", "warmup_steps", "train_steps", "batch_size", "seed")
    header = {
        "dataset": config.dataset,
        "archs": [space.key(a) for a in archs],
        **{f: getattr(config, f) for f in fields},
    }
    path = Path(config.out) / f"shared-scores-{config.dataset}.json" if config.out else None
    return ResultCache(path, header)


def method_run(space, data, archs, config: Config, method: str, seed: int, cache) -> dict:
    """The scores of one method with one supernet seed (the architectures in an order drawn
    from the seed), and the seconds they took; measured once, then read from `cache`."""
    options = {**BASELINE, **METHODS[method]}
    name = f"{method} {json.dumps(options, sort_keys=True)} seed {seed}"
    if name not in cache:
        start = time.perf_counter()
        order = np.random.default_rng(seed).permutation(len(archs))
        scores = shared_scores(space, data, archs, config, options, seed, order)
        cache.put(name, {"scores": scores, "seconds": time.perf_counter() - start})
    return cache[name]


def run(config: Config) -> dict:
    unknown = set(config.methods) - set(METHODS)
    if unknown:
        raise ValueError(f"unknown methods {sorted(unknown)}; methods: {', '.join(METHODS)}")
    data = load_dataset(config.dataset, seed=config.seed)
    space = nb201(channels=config.channels, cells_per_stage=config.cells_per_stage)
    archs = covering_archs(space, config.n_archs, config.seed)
    out = Path(config.out) if config.out else None

    how = Standalone(config.standalone_epochs, config.batch_size, config.standalone_seeds)
    cache = out / f"standalone-{config.dataset}.json" if out else None
    runs = standalone_accuracies(space, data, archs, how, cache)
    truth = runs.mean(axis=1)

    scored, seeds = score_cache(space, archs, config), range(config.supernet_seeds)
    figures, scores = {}, {}
    for method in config.methods:
        per_seed = [method_run(space, data, archs, config, method, s, scored) for s in seeds]
        scores[method] = np.array([r["scores"] for r in per_seed])
        each = [agreement(truth, s) for s in scores[method]]
        figures[method] = {m: _ci([e[m] for e in each]) for m in METRICS}
        figures[method]["seconds"] = round(float(np.mean([r["seconds"] for r in per_seed])), 1)

    results = {
        "dataset": config.dataset,
        "n_archs": len(archs),
        "ceiling_kendall_tau": round(seed_ceiling(runs), 4),
        "standalone_accuracy_range": [round(float(truth.min()), 4), round(float(truth.max()), 4)],
        "methods": figures,
        "config": dataclasses.asdict(config),
    }
    print(table(results))
    if out is not None:
        (out / "table.md").write_text(table(results) + "\n")
        scatter(truth, scores, out / "scatter.png")
    return results


def _ci(values) -> list[float | None]:
    mean, half = mean_ci(values)
    return [round(mean, 4), None if half is None else round(half, 4)]


def table(results: dict) -> str:
    """The figures as a Markdown table: mean ± 95% CI half-width over supernet seeds."""
    lines = [
        f"{results['n_archs']} nb201 architectures on {results['dataset']}; stand-alone accuracy "
        f"{results['standalone_accuracy_range'][0]:.3f} to "
        f"{results['standalone_accuracy_range'][1]:.3f}; ceiling (Kendall tau between "
        f"stand-alone seeds): {results['ceiling_kendall_tau']:.3f}",
        "",
        "| method | Kendall tau | Spearman rho | top-5 overlap | top-10 overlap | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for method, f in results["methods"].items():
        cells = [_cell(*f[m]) for m in METRICS]
        lines.append(f"| {method} | {' | '.join(cells)} | {f['seconds']:.0f} |")
    return "\n".join(lines)


def _cell(mean: float, half: float | None) -> str:
    return f"{mean:.3f}" if half is None else f"{mean:.3f} ± {half:.3f}"


def scatter(truth, scores: dict, path: Path) -> None:
    """One panel per method: shared-weight score (every seed) against stand-alone accuracy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(scores), figsize=(3.2 * len(scores), 3.2), squeeze=False)
    for ax, (method, s) in zip(axes[0], scores.items(), strict=True):
        for seed, row in enumerate(s):
            ax.scatter(truth, row, s=8, alpha=0.6, label=f"seed {seed}")
        ax.set_title(method)
        ax.set_xlabel("stand-alone accuracy")
    axes[0][0].set_ylabel("shared-weight score")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> dict:
    return entry.main(__doc__.splitlines()[0], run, Config(), QUICK, argv)


if __name__ == "__main__":
    main()
