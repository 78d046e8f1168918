"""The paths a supernet's warm-up trains, one architecture per step.

``"uniform"``: each step an independently uniform architecture (single-path one-shot; Guo et
al., "Single Path One-Shot Neural Architecture Search with Uniform Sampling", ECCV 2020).
``"fair"``: each decision runs through shuffled rounds of all its choices, so that every op of
every edge trains equally often, up to one step (after the strict fairness of Chu et al.,
"FairNAS: Rethinking Evaluation Fairness of Weight Sharing Neural Architecture Search",
ICCV 2021, which trains every choice once per step).
"""

from __future__ import annotations

import jax
import numpy as np

from nas.space import SearchSpace

SAMPLINGS = ("uniform", "fair")


def warmup_paths(space: SearchSpace, key: jax.Array, n: int, sampling: str = "uniform"):
    """`n` architectures, shape (n, D), for `n` warm-up steps."""
    if sampling == "uniform":
        return np.asarray(space.sample(key, n))
    if sampling != "fair":
        raise ValueError(f"unknown warm-up sampling {sampling!r}; choose from {SAMPLINGS}")
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)))
    columns = []
    for size in space.cardinalities:
        rounds = np.tile(np.arange(size), (-(-n // int(size)), 1))
        columns.append(rng.permuted(rounds, axis=1).ravel()[:n])
    return np.stack(columns, axis=1).astype(np.int32).reshape(n, space.n_decisions)
