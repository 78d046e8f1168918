"""Ground truth for ranking studies: architectures that cover the range of quality, each trained
stand-alone with several seeds, the accuracies cached on disk so that reruns are cheap.
"""

from __future__ import annotations

import dataclasses
import os

import jax
import numpy as np

from experiments.cache import ResultCache
from nas.data import Dataset
from nas.evaluators import StandaloneEvaluator
from nas.space import SearchSpace
from nas.train import TrainConfig


@dataclasses.dataclass(frozen=True)
class Standalone:
    """How each architecture is trained alone."""

    epochs: int = 10
    batch_size: int = 64
    seeds: int = 3


def live_parametric_ops(space: SearchSpace, arch) -> int:
    """Convolutions on edges that reach a cell's output: a cheap proxy of quality."""
    return sum(op.count("conv") for ops in space.live_ops(arch).values() for op in ops)


def sample_archs(space: SearchSpace, n: int, seed: int) -> list[np.ndarray]:
    """`n` random architectures with distinct canonical keys (no network trained twice)."""
    archs, keys = [], set()
    for key in jax.random.split(jax.random.key(seed), 10 * n):
        arch = np.asarray(space.sample(key))
        if space.key(arch) not in keys and len(archs) < n:
            keys.add(space.key(arch))
            archs.append(arch)
    return archs


def covering_archs(space: SearchSpace, n: int, seed: int) -> list[np.ndarray]:
    """`n` distinct architectures spread evenly over the number of live convolutions.

    Uniform sampling rarely draws the extremes (cells without a live convolution, cells made
    of them), so candidates are grouped by `live_parametric_ops` and drawn from the groups in
    turn.
    """
    groups: dict[int, list[np.ndarray]] = {}
    for arch in sample_archs(space, 20 * n, seed):
        groups.setdefault(live_parametric_ops(space, arch), []).append(arch)
    picks, order = [], sorted(groups)
    while len(picks) < n and any(groups.values()):
        for g in order:
            if groups[g] and len(picks) < n:
                picks.append(groups[g].pop(0))
    return picks


def standalone_accuracies(
    space: SearchSpace,
    data: Dataset,
    archs: list[np.ndarray],
    how: Standalone,
    cache: str | os.PathLike | None,
    on_done=None,
) -> np.ndarray:
    """Validation accuracy of each architecture trained alone: shape (len(archs), seeds).

    Each (architecture, seed) result is added to the `ResultCache` file `cache` as soon as it
    is known (None: nothing is kept), under a header naming the space, data and training.

    Args:
      on_done: called with (architecture index, seed, accuracy) after each training.
    """
    header = {
        "space": f"{space.name}-v{space.version}",
        "skeleton": dataclasses.asdict(space.skeleton),
        "data": data.name,
        "splits": {"train": len(data.y_train), "val": len(data.y_val)},
        "standalone": dataclasses.asdict(how),
    }
    cache = ResultCache(cache, header)
    out = np.zeros((len(archs), how.seeds))
    for i, arch in enumerate(archs):
        for seed in range(how.seeds):
            name = f"{space.key(arch)}/{seed}"
            if name not in cache:
                config = TrainConfig(batch_size=how.batch_size)
                alone = StandaloneEvaluator(
                    space, data, epochs=how.epochs, config=config, seed=seed
                )
                cache.put(name, alone.evaluate(arch).score)
            out[i, seed] = cache[name]
            if on_done is not None:
                on_done(i, seed, out[i, seed])
    return out
