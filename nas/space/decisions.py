"""The decisions that make an architecture, and the tables that turn them into edges.

An architecture is a flat int32 vector with one entry per decision. Every vector whose entries
lie in range is a valid architecture (the space is a product of categorical choices), so a
strategy can sample, mutate and learn over it without knowing what the decisions mean.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from nas.space.cell import Cell


@dataclasses.dataclass(frozen=True)
class Decision:
    """One categorical choice of an architecture.

    Attributes:
      cell: the cell type it belongs to (``"normal"``, ``"reduce"``).
      node: the node index inside that cell.
      kind: ``"op"`` (the op of one input slot), ``"input"`` (the source of one input slot) or
        ``"inputs"`` (a combination of distinct sources for all of the node's slots).
      slot: the input slot for ``"op"`` and ``"input"``; 0 for ``"inputs"``.
      choices: op names, source node indices, or tuples of source node indices.
    """

    cell: str
    node: int
    kind: str
    slot: int
    choices: tuple

    @property
    def size(self) -> int:
        return len(self.choices)

    def describe(self) -> str:
        what = {"op": f"op of input {self.slot}", "input": f"input {self.slot}"}.get(
            self.kind, "inputs"
        )
        return f"{self.cell} cell, node {self.node}, {what}"


@dataclasses.dataclass(frozen=True)
class EdgeTable:
    """Static gathers from a decision vector to one cell's per-edge inputs and ops."""

    op_decision: np.ndarray  # (E,) index into the arch vector of each edge's op
    input_decision: np.ndarray  # (E,) index into the arch vector, or -1 where inputs are fixed
    input_table: np.ndarray  # (E, max choices) source node for each value of that decision

    def inputs(self, arch, xp=np):
        """Each edge's source node for the decision vector `arch` (NumPy or traced JAX)."""
        fixed = self.input_decision < 0
        values = xp.where(fixed, 0, arch[np.maximum(self.input_decision, 0)])
        return xp.asarray(self.input_table)[np.arange(len(fixed)), values]

    def ops(self, arch):
        """Each edge's op index for the decision vector `arch`."""
        return arch[self.op_decision]


def cell_decisions(name: str, cell: Cell, offset: int) -> tuple[list[Decision], EdgeTable]:
    """Lists the decisions of one cell, numbered from `offset`, and its edge table."""
    decisions: list[Decision] = []
    op_decision, input_decision, input_rows = [], [], []
    for k, node in enumerate(cell.nodes):
        index = cell.n_inputs + k
        if node.fixed_inputs:
            slot_inputs = [(None, (c,)) for c in node.candidates]
        elif node.distinct:
            pairs = node.input_pairs
            decisions.append(Decision(name, index, "inputs", 0, pairs))
            position = offset + len(decisions) - 1
            slot_inputs = [(position, tuple(p[s] for p in pairs)) for s in range(node.choose)]
        else:
            slot_inputs = []
            for s in range(node.choose):
                decisions.append(Decision(name, index, "input", s, node.candidates))
                slot_inputs.append((offset + len(decisions) - 1, node.candidates))
        for s in range(node.choose):
            decisions.append(Decision(name, index, "op", s, cell.ops))
            op_decision.append(offset + len(decisions) - 1)
            position, row = slot_inputs[s]
            input_decision.append(-1 if position is None else position)
            input_rows.append(row)
    width = max(len(row) for row in input_rows)
    table = np.array([list(row) + [row[-1]] * (width - len(row)) for row in input_rows])
    return decisions, EdgeTable(
        np.asarray(op_decision, np.int32),
        np.asarray(input_decision, np.int32),
        table.astype(np.int32),
    )
