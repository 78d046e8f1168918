"""Numeric encodings of architectures for surrogate models (Bayesian optimisation, predictors)."""

from __future__ import annotations

import numpy as np


def decisions_onehot(space, arch: np.ndarray) -> np.ndarray:
    """One-hot of every decision, concatenated: length ``sum(space.cardinalities)``."""
    return np.concatenate(
        [np.eye(c, dtype=np.float32)[v] for v, c in zip(arch, space.cardinalities)]
    )


def ops_adjacency(space, arch: np.ndarray) -> np.ndarray:
    """Per cell: the one-hot op of every edge and the node adjacency matrix, flattened.

    The adjacency entry ``[dst, src]`` counts the edges from `src` into `dst`, so two inputs
    that read the same node are visible to the surrogate.
    """
    parts = []
    for cell_type, (inputs, ops) in space.edges(arch).items():
        cell = space.cells[cell_type]
        n = cell.n_inputs + cell.n_nodes
        adjacency = np.zeros((n, n), np.float32)
        np.add.at(adjacency, (np.array(cell.edge_nodes()), inputs), 1.0)
        parts += [np.eye(len(cell.ops), dtype=np.float32)[ops].ravel(), adjacency.ravel()]
    return np.concatenate(parts)


ENCODINGS = {"onehot": ops_adjacency, "decisions": decisions_onehot}
