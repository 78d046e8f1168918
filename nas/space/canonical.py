"""Canonical form of a cell, so that architectures computing the same network share one key.

Four equivalences are applied, in order:

1. An edge whose op is the cell's zero op contributes nothing and is dropped.
2. A node left with no incoming edge outputs zeros; its outgoing edges through zero-preserving
   ops (``op(0) == 0``) are dropped too, and zero-ness propagates.
3. A node whose only input arrives through the identity op is that input.
4. Nodes that do not reach the cell output are dropped; the remaining graph is relabelled by a
   canonical order of its nodes (isomorphic cells give the same string), and the inputs of a
   node, being summed, are unordered.
"""

from __future__ import annotations

import itertools
import math
import re

from nas.space.cell import Cell

_MAX_PERMUTATIONS = 5040


def output_nodes(cell: Cell, inputs) -> tuple[int, ...]:
    """The intermediate nodes that form the cell's output, for the given per-edge inputs."""
    first = cell.n_inputs
    nodes = range(first, first + cell.n_nodes)
    if cell.output == "last":
        return (first + cell.n_nodes - 1,)
    if cell.output == "concat":
        return tuple(nodes)
    read = {int(i) for i in inputs}
    return tuple(n for n in nodes if n not in read)


def canonical_cell(cell: Cell, inputs, ops) -> str:
    """A string that is equal for two edge assignments iff they are equivalent as described.

    Args:
      cell: the cell description.
      inputs: per-edge source node indices (length ``cell.n_edges``).
      ops: per-edge op indices.
    """
    dst = cell.edge_nodes()
    incoming: dict[int, list[tuple[str, int]]] = {n: [] for n in set(dst)}
    zero: set[int] = set()
    for node in sorted(incoming):
        for e, d in enumerate(dst):
            if d != node:
                continue
            op, src = cell.ops[int(ops[e])], int(inputs[e])
            if op == cell.zero_op or (src in zero and op in cell.zero_preserving):
                continue
            incoming[node].append((op, src))
        if not incoming[node]:
            zero.add(node)

    alias = {n: n for n in range(cell.n_inputs)}
    for node in sorted(incoming):
        incoming[node] = [(op, alias[src]) for op, src in incoming[node]]
        only = incoming[node]
        alias[node] = only[0][1] if len(only) == 1 and only[0][0] == cell.identity_op else node

    outputs = [alias[n] for n in output_nodes(cell, inputs)]
    alive, stack = set(), list(outputs)
    while stack:
        node = stack.pop()
        if node in alive or node < cell.n_inputs:
            continue
        alive.add(node)
        stack.extend(src for _, src in incoming[node])

    expr: dict[int, str] = {i: f"in{i}" for i in range(cell.n_inputs)}
    for node in sorted(alive):
        terms = sorted(f"{op}({expr[src]})" for op, src in incoming[node])
        expr[node] = "[" + "+".join(terms) + "]" if terms else "0"

    groups: dict[str, list[int]] = {}
    for node in sorted(alive, key=lambda n: expr[n]):
        groups.setdefault(expr[node], []).append(node)
    orders = [list(itertools.permutations(g)) for g in groups.values()]
    if math.prod(len(o) for o in orders) > _MAX_PERMUTATIONS:
        # Too many equal-looking nodes to relabel exhaustively: the expressions alone still
        # identify isomorphic cells, at the cost of merging a few that share subterms.
        return "|".join(sorted(expr[n] for n in outputs))
    best = None
    for choice in itertools.product(*orders):
        order = [n for group in choice for n in group]
        label = {n: f"in{n}" for n in range(cell.n_inputs)}
        label.update({n: f"n{i}" for i, n in enumerate(order)})
        body = ";".join(
            label[n] + "=" + "+".join(sorted(f"{op}({label[s]})" for op, s in incoming[n]))
            for n in order
        )
        form = body + "->" + ",".join(sorted(label[n] for n in outputs))
        best = form if best is None or form < best else best
    return best


def live_ops(cell: Cell, inputs, ops) -> list[str]:
    """The ops on the edges that reach the cell's output, after the equivalences above."""
    return re.findall(r"([^\s(+;=]+)\(", canonical_cell(cell, inputs, ops))
