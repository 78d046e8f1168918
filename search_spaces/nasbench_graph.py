"""NAS-Bench-Graph's space: 4 GNN layers, each reading one earlier node, 9 ops, 26,206 entries.

Reference: Qin et al., "NAS-Bench-Graph: Benchmarking Graph Neural Architecture Search",
NeurIPS 2022 Datasets and Benchmarks. Node ``i`` (1..4) applies one op to one of the graph
input (node 0) or the nodes before it; the nodes no other node reads (the leaves) form the output.
That gives 24 link patterns x 9^4 op choices (5^4 on ogbn-proteins, which has its own op list).

The space is tabular: its scores come from the benchmark's table (see
`nas.evaluators.NasBenchGraphEvaluator`), and it is never built as a network, so its op names
need not be registered in `nas.ops.OPS`. `to_nasbench_graph` turns one of its architectures into
the package's ``(link, ops)`` lists, which the package's own ``Arch(link, ops).valid_hash()``
looks up.

Canonical keys: ``space.key`` merges isomorphic cells and skip-only nodes, as NAS-Bench-Graph's
``valid_hash`` does, but the benchmark also drops a leaf that is the raw input (reached through
skips alone) from the output, which ``space.key`` keeps. So equal keys always share a table entry,
while 27,934 keys (2,293 on proteins) map to the 26,206 entries (2,021).
"""

from __future__ import annotations

from nas.space import SearchSpace, Skeleton, choice_cell

# The package's `gnn_list` and `gnn_list_proteins`, copied so that the space needs no optional
# dependency; tests/test_tabular.py checks they still match.
OPS = ("gat", "gcn", "gin", "cheb", "sage", "arma", "graph", "fc", "skip")
OPS_PROTEINS = ("gcn", "sage", "arma", "fc", "skip")
DATASETS = (
    "cora",
    "citeseer",
    "pubmed",
    "cs",
    "physics",
    "photo",
    "computers",
    "arxiv",
    "proteins",
)


def nasbench_graph(dataset: str = "cora") -> SearchSpace:
    """The NAS-Bench-Graph space for `dataset` (one of `DATASETS`).

    The datasets share the space except ogbn-proteins, whose table covers 5 ops only.

    Example::

        space = nasbench_graph("citeseer")
        link, ops = to_nasbench_graph(space, space.sample(jax.random.key(0)))
    """
    if dataset not in DATASETS:
        raise ValueError(
            f"unknown NAS-Bench-Graph dataset {dataset!r}; valid datasets: {', '.join(DATASETS)}"
        )
    ops = OPS_PROTEINS if dataset == "proteins" else OPS
    # "skip" is the identity: a node reading its input through it is that input. There is no
    # zero op, so no node is provably zero.
    cell = choice_cell(4, ops, n_inputs=1, choose=1, output="loose_ends", identity_op="skip")
    # The benchmark's network is this one cell (hidden size fixed per dataset by the table's
    # authors), so the skeleton is one cell in one stage; channels is a placeholder, since a
    # tabular space is never built.
    skeleton = Skeleton(channels=1, cells_per_stage=1, stages=1)
    return SearchSpace(f"nasbench_graph_{dataset}", {"normal": cell}, skeleton)


def to_nasbench_graph(space: SearchSpace, arch) -> tuple[list[int], list[str]]:
    """The package's ``(link, ops)`` for `arch`: each node's input index (0 the graph) and op.

    Node indices agree: our cell has one input, node 0, and node ``i`` is computing node ``i``.
    """
    inputs, ops = space.edges(space.validate(arch))["normal"]
    names = space.cells["normal"].ops
    return [int(i) for i in inputs], [names[int(o)] for o in ops]


def from_nasbench_graph(space: SearchSpace, link, ops):
    """The architecture vector for the package's ``(link, ops)``; the inverse of the above.

    Raises:
      InvalidArchitecture: a link or op that this space does not allow.
    """
    rows = [
        {"node": i + 1, "inputs": [int(s)], "ops": [o]} for i, (s, o) in enumerate(zip(link, ops))
    ]
    return space.from_json(
        {"space": space.name, "version": space.version, "cells": {"normal": rows}}
    )
