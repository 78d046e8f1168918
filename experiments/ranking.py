"""How well shared-weight scores rank architectures, against training each one alone.

Samples `n_archs` random nb201 architectures, trains each stand-alone on digits (the ground
truth), warms a supernet up with uniformly sampled paths, scores every architecture with the
shared-weights evaluator exactly as a search would, and reports the Kendall tau and Spearman
rho between the two.

Run from the repository root: ``python -m experiments.ranking`` (``--quick`` for a smoke
run). The last line printed is
a JSON object of the figures.
"""

from __future__ import annotations

import dataclasses
import time

import jax
import numpy as np
from scipy import stats

from experiments import entry
from nas.data import load_digits
from nas.evaluators import SharedWeightsEvaluator, StandaloneEvaluator
from nas.train import TrainConfig
from search_spaces import nb201


@dataclasses.dataclass(frozen=True)
class Config:
    n_archs: int = 30
    channels: int = 16
    cells_per_stage: int = 5
    standalone_epochs: int = 10
    warmup_steps: int = 1000
    train_steps: int = 20
    batch_size: int = 64
    seed: int = 0


QUICK = Config(
    n_archs=4, channels=4, cells_per_stage=1, standalone_epochs=1, warmup_steps=10, train_steps=2
)


def sample_archs(space, n: int, seed: int) -> list[np.ndarray]:
    """`n` random architectures with distinct canonical keys (no network trained twice)."""
    archs, keys = [], set()
    for key in jax.random.split(jax.random.key(seed), 10 * n):
        arch = np.asarray(space.sample(key))
        if space.key(arch) not in keys and len(archs) < n:
            keys.add(space.key(arch))
            archs.append(arch)
    return archs


def standalone_accuracies(space, data, archs, config: Config) -> list[float]:
    """The ground truth: each architecture's validation accuracy, trained alone."""
    train = TrainConfig(batch_size=config.batch_size)
    alone = StandaloneEvaluator(
        space, data, epochs=config.standalone_epochs, config=train, seed=config.seed
    )
    return [alone.evaluate(a).score for a in archs]


def shared_scores(space, data, archs, config: Config) -> list[float]:
    """Shared-weight scores in one process: warm-up, then each architecture as a search would."""
    shared = SharedWeightsEvaluator(
        space,
        data,
        train_steps=config.train_steps,
        warmup_steps=config.warmup_steps,
        config=TrainConfig(batch_size=config.batch_size),
        planned_evaluations=config.n_archs,
        seed=config.seed,
    )
    shared.warmup()
    return [shared.evaluate(a).score for a in archs]


def run(config: Config) -> dict:
    data = load_digits(seed=config.seed)
    space = nb201(channels=config.channels, cells_per_stage=config.cells_per_stage)
    archs = sample_archs(space, config.n_archs, config.seed)

    start = time.perf_counter()
    truth = standalone_accuracies(space, data, archs, config)
    standalone_s = time.perf_counter() - start

    start = time.perf_counter()
    scores = shared_scores(space, data, archs, config)
    shared_s = time.perf_counter() - start

    tau, _ = stats.kendalltau(truth, scores)
    rho, _ = stats.spearmanr(truth, scores)
    for arch, t, s in sorted(zip(archs, truth, scores, strict=True), key=lambda r: -r[1]):
        print(f"standalone {t:.4f}  shared {s:.4f}  {space.describe(arch)}")
    return {
        "n_archs": len(archs),
        "kendall_tau": round(float(tau), 4),
        "spearman_rho": round(float(rho), 4),
        "standalone_accuracy_mean": round(float(np.mean(truth)), 4),
        "standalone_accuracy_range": [round(float(min(truth)), 4), round(float(max(truth)), 4)],
        "shared_score_mean": round(float(np.mean(scores)), 4),
        "standalone_seconds": round(standalone_s, 1),
        "shared_seconds": round(shared_s, 1),
        "config": dataclasses.asdict(config),
    }


def main(argv=None) -> dict:
    return entry.main(__doc__.splitlines()[0], run, Config(), QUICK, argv)


if __name__ == "__main__":
    main()
