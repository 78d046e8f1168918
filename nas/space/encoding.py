"""Numeric encodings of architectures for surrogate models (Bayesian optimisation, predictors).

Each encoding takes `xp`, NumPy or `jax.numpy`, so the same code serves the host and traced
JAX (a surrogate that encodes its candidate pool inside `jit`).
"""

from __future__ import annotations

import numpy as np


def decisions_onehot(space, arch, xp=np):
    """One-hot of every decision, concatenated: length ``sum(space.cardinalities)``."""
    return xp.concatenate(
        [xp.eye(int(c), dtype=np.float32)[arch[i]] for i, c in enumerate(space.cardinalities)]
    )


def ops_adjacency(space, arch, xp=np):
    """Per cell: the one-hot op of every edge and the node adjacency matrix, flattened.

    The adjacency entry ``[dst, src]`` counts the edges from `src` into `dst`, so two inputs
    that read the same node are visible to the surrogate.
    """
    parts = []
    for cell_type, (inputs, ops) in space.edges(arch, xp).items():
        cell = space.cells[cell_type]
        eye = xp.eye(cell.n_inputs + cell.n_nodes, dtype=np.float32)
        adjacency = eye[np.array(cell.edge_nodes())].T @ eye[inputs]
        parts += [xp.eye(len(cell.ops), dtype=np.float32)[ops].ravel(), adjacency.ravel()]
    return xp.concatenate(parts)


ENCODINGS = {"onehot": ops_adjacency, "decisions": decisions_onehot}
