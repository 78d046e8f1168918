"""Declarative description of one cell: its nodes, the inputs each may read, its candidate ops.

A cell has `n_inputs` input nodes (indices ``0 .. n_inputs-1``: the outputs of earlier cells)
followed by its intermediate nodes. Intermediate node ``k`` has index ``n_inputs + k``; it reads
``choose`` of its candidate earlier nodes, applies one op to each and sums the results. Each
(node, input slot) pair is an *edge*; an architecture picks an input and an op for every edge.
"""

from __future__ import annotations

import dataclasses
import itertools

OUTPUTS = ("last", "concat", "loose_ends")


@dataclasses.dataclass(frozen=True)
class Node:
    """One intermediate node.

    Args:
      candidates: indices of the earlier nodes this node may read (cell inputs come first).
      choose: how many of them it reads. ``choose == len(candidates)`` means the inputs are
        fixed (every candidate, in order), as in NAS-Bench-201 where each node reads all
        predecessors.
      distinct: whether the chosen inputs must differ (DARTS) or may repeat (ENAS).
    """

    candidates: tuple[int, ...]
    choose: int
    distinct: bool = True

    @property
    def fixed_inputs(self) -> bool:
        return self.choose == len(self.candidates) and self.distinct

    @property
    def input_pairs(self) -> tuple[tuple[int, ...], ...]:
        """The allowed input tuples when inputs are chosen as one distinct combination."""
        return tuple(itertools.combinations(self.candidates, self.choose))


@dataclasses.dataclass(frozen=True)
class Cell:
    """A cell: input count, intermediate nodes, candidate ops by name, and how its output is made.

    Args:
      n_inputs: number of cell inputs (1: the previous cell; 2: the previous two cells).
      nodes: the intermediate nodes, in topological order.
      ops: candidate op names (keys of `nas.ops.OPS`, or ops a user registered there).
      output: ``"last"`` (the last node), ``"concat"`` (all intermediate nodes, channel-wise)
        or ``"loose_ends"`` (the intermediate nodes no other node reads, as in ENAS).
      zero_op: the op that outputs zeros, if any; the canonical key drops its edges.
      zero_preserving: ops with ``op(0) == 0``; the canonical key drops their edges out of
        nodes that are provably zero.
      identity_op: the op that returns its input, if any; a node whose only input arrives
        through it is the same tensor as that input, and the canonical key merges the two.
    """

    n_inputs: int
    nodes: tuple[Node, ...]
    ops: tuple[str, ...]
    output: str = "concat"
    zero_op: str | None = None
    zero_preserving: tuple[str, ...] = ()
    identity_op: str | None = None

    def __post_init__(self):
        where = f"Cell(ops={self.ops})"
        if self.n_inputs < 1:
            raise ValueError(f"{where}: n_inputs must be at least 1, got {self.n_inputs}")
        if not self.nodes:
            raise ValueError(f"{where}: a cell needs at least one intermediate node")
        if len(self.ops) < 1 or len(set(self.ops)) != len(self.ops):
            raise ValueError(f"{where}: ops must be non-empty and unique")
        if self.output not in OUTPUTS:
            raise ValueError(f"{where}: output {self.output!r} is not one of {OUTPUTS}")
        for name in (self.zero_op, self.identity_op, *self.zero_preserving):
            if name is not None and name not in self.ops:
                raise ValueError(f"{where}: {name!r} is not one of the cell's ops")
        for k, node in enumerate(self.nodes):
            index = self.n_inputs + k
            bad = [c for c in node.candidates if not 0 <= c < index]
            if not node.candidates or bad:
                raise ValueError(
                    f"{where}: node {index} may only read earlier nodes 0..{index - 1}, "
                    f"got candidates {node.candidates}"
                )
            if len(set(node.candidates)) != len(node.candidates):
                raise ValueError(f"{where}: node {index} lists a candidate twice")
            if not 1 <= node.choose or (node.distinct and node.choose > len(node.candidates)):
                raise ValueError(
                    f"{where}: node {index} cannot choose {node.choose} distinct inputs "
                    f"from {len(node.candidates)} candidates"
                )

    @property
    def n_nodes(self) -> int:
        return len(self.nodes)

    @property
    def n_edges(self) -> int:
        return sum(node.choose for node in self.nodes)

    def edge_nodes(self) -> tuple[int, ...]:
        """The node index that each edge feeds, edge by edge."""
        return tuple(
            self.n_inputs + k for k, node in enumerate(self.nodes) for _ in range(node.choose)
        )


def dense_cell(n_nodes: int, ops, **kwargs) -> Cell:
    """A cell whose every node reads all earlier nodes (NAS-Bench-201 style), output the last."""
    nodes = tuple(Node(tuple(range(k + 1)), k + 1) for k in range(n_nodes))
    return Cell(1, nodes, tuple(ops), output=kwargs.pop("output", "last"), **kwargs)


def choice_cell(n_nodes: int, ops, *, n_inputs=2, choose=2, distinct=True, **kwargs) -> Cell:
    """A cell whose nodes each choose `choose` inputs among all earlier nodes (DARTS, ENAS)."""
    nodes = tuple(Node(tuple(range(n_inputs + k)), choose, distinct) for k in range(n_nodes))
    return Cell(n_inputs, nodes, tuple(ops), **kwargs)
