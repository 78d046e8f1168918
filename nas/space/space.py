"""A cell-based search space: cells, macro skeleton, and everything done with an architecture.

An architecture is a flat int32 vector, one entry per `Decision` (see `nas.space.decisions`).
Its JSON form names every node's inputs and ops and round-trips through `to_json`/`from_json`.

Example::

    from nas.space import Cell, Node, SearchSpace, Skeleton

    cell = Cell(n_inputs=1, nodes=(Node((0,), 1), Node((0, 1), 1)),
                ops=("conv3x3", "skip_connect"), output="last")
    space = SearchSpace("tiny", {"normal": cell}, Skeleton(channels=8, cells_per_stage=1))
    arch = space.sample(jax.random.key(0))
    space.validate(arch); space.key(arch); space.to_json(arch)
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from nas.space.canonical import canonical_cell, live_ops
from nas.space.cell import Cell
from nas.space.decisions import Decision, EdgeTable, cell_decisions
from nas.space.encoding import ENCODINGS

CELL_TYPES = ("normal", "reduce")
REDUCTIONS = ("residual", "cell")


class InvalidArchitecture(ValueError):
    """An architecture (vector or JSON) that does not belong to its search space."""


@dataclasses.dataclass(frozen=True)
class Skeleton:
    """The macro structure around the cells.

    Args:
      channels: channels of the first stage; each reduction doubles them.
      cells_per_stage: normal cells in each stage.
      stages: number of stages; a reduction sits between consecutive stages.
      reduction: ``"residual"`` (a residual block with a stride-2 conv, as in NAS-Bench-201) or
        ``"cell"`` (a reduction cell: the space's ``"reduce"`` cell if it has one, else its
        normal cell, on inputs reduced with a stride-2 factorized reduce, as in ENAS).
    """

    channels: int = 16
    cells_per_stage: int = 5
    stages: int = 3
    reduction: str = "residual"

    def __post_init__(self):
        if self.channels < 1 or self.cells_per_stage < 0 or self.stages < 1:
            raise ValueError(f"{self}: channels and stages must be positive, cells at least 0")
        if self.reduction not in REDUCTIONS:
            raise ValueError(f"{self}: reduction must be one of {REDUCTIONS}")


class SearchSpace:
    """A named cell-based space: one or two cell types plus a skeleton.

    Args:
      name: the space's name, written into every exported architecture.
      cells: ``{"normal": Cell}`` or ``{"normal": Cell, "reduce": Cell}``.
      skeleton: the macro structure.
      version: bump it when the space changes so old architectures are rejected, not misread.
    """

    def __init__(self, name: str, cells: Mapping[str, Cell], skeleton: Skeleton, *, version=1):
        unknown = set(cells) - set(CELL_TYPES)
        if "normal" not in cells or unknown:
            raise ValueError(
                f"space {name!r}: cells must be 'normal' and optionally 'reduce', got "
                f"{sorted(cells)}"
            )
        if "reduce" in cells and skeleton.reduction != "cell":
            raise ValueError(
                f"space {name!r}: a 'reduce' cell needs Skeleton(reduction='cell'), "
                f"got reduction={skeleton.reduction!r}"
            )
        self.name, self.version, self.skeleton = name, version, skeleton
        self.cells = {t: cells[t] for t in CELL_TYPES if t in cells}
        decisions: list[Decision] = []
        self.tables: dict[str, EdgeTable] = {}
        for cell_type, cell in self.cells.items():
            cell_dec, table = cell_decisions(cell_type, cell, len(decisions))
            decisions += cell_dec
            self.tables[cell_type] = table
        self.decisions: tuple[Decision, ...] = tuple(decisions)
        self.cardinalities = np.array([d.size for d in decisions], np.int32)

    def __repr__(self):
        return f"SearchSpace({self.name!r}, {len(self.decisions)} decisions, size {self.size:,})"

    @property
    def size(self) -> int:
        """The number of architectures (decision vectors) in the space."""
        return math.prod(int(c) for c in self.cardinalities)

    @property
    def n_decisions(self) -> int:
        return len(self.decisions)

    # -- checking ---------------------------------------------------------------------------

    def validate(self, arch) -> np.ndarray:
        """Checks an architecture vector and returns it as int32 NumPy.

        Raises:
          InvalidArchitecture: naming the offending entry, its node and the allowed values.
        """
        a = np.asarray(arch)
        if a.shape != (self.n_decisions,):
            raise InvalidArchitecture(
                f"{self.name}: an architecture is a vector of {self.n_decisions} decisions, "
                f"got shape {a.shape}"
            )
        if not np.issubdtype(a.dtype, np.integer):
            raise InvalidArchitecture(f"{self.name}: decisions must be integers, got {a.dtype}")
        for i, (value, d) in enumerate(zip(a, self.decisions)):
            if not 0 <= value < d.size:
                raise InvalidArchitecture(
                    f"{self.name}: arch[{i}] ({d.describe()}) = {value} is out of range "
                    f"0..{d.size - 1}; choices: {_show(d.choices)}"
                )
        return a.astype(np.int32)

    # -- randomness (pure JAX, usable inside jit) ---------------------------------------------

    def sample(self, key: jax.Array, n: int | None = None) -> jax.Array:
        """Uniformly random architectures: shape (D,) or, with `n`, (n, D)."""
        shape = (self.n_decisions,) if n is None else (n, self.n_decisions)
        return jax.random.randint(key, shape, 0, self.cardinalities).astype(jnp.int32)

    def mutate(self, arch: jax.Array, key: jax.Array) -> jax.Array:
        """Changes exactly one decision (among those with a choice) to a different value."""
        k_pos, k_val = jax.random.split(key)
        card = jnp.asarray(self.cardinalities)
        choosable = card > 1
        position = jax.random.choice(k_pos, self.n_decisions, p=choosable / choosable.sum())
        shift = jax.random.randint(k_val, (), 1, jnp.maximum(card[position], 2))
        return arch.at[position].set((arch[position] + shift) % card[position])

    # -- structure ----------------------------------------------------------------------------

    def edges(self, arch, xp=np) -> dict[str, tuple]:
        """Per cell type, each edge's source node and op index: ``{cell: (inputs, ops)}``."""
        return {t: (tab.inputs(arch, xp), tab.ops(arch)) for t, tab in self.tables.items()}

    def key(self, arch) -> str:
        """A canonical key: equal for architectures that build the same network."""
        arch = self.validate(arch)
        forms = [
            f"{t}:{canonical_cell(self.cells[t], inputs, ops)}"
            for t, (inputs, ops) in self.edges(arch).items()
        ]
        return hashlib.sha1("|".join(forms).encode()).hexdigest()[:16]

    def live_ops(self, arch) -> dict[str, list[str]]:
        """Per cell type, the ops on edges that reach the cell's output (canonical form)."""
        arch = self.validate(arch)
        return {
            t: live_ops(self.cells[t], inputs, ops) for t, (inputs, ops) in self.edges(arch).items()
        }

    def is_degenerate(self, arch) -> bool:
        """Whether some cell computes nothing of its own: no op reaches its output but the
        identity (all-skip, all-none or disconnected cells, the collapse of weight sharing)."""
        return any(
            set(ops) <= {self.cells[t].identity_op} for t, ops in self.live_ops(arch).items()
        )

    def encode(self, arch, kind: str = "onehot", xp=np):
        """A float vector for surrogate models; `kind` is a key of `ENCODINGS`.

        With ``xp=jax.numpy`` it traces inside `jit` (the architecture is then not validated).
        """
        if kind not in ENCODINGS:
            raise ValueError(f"unknown encoding {kind!r}; valid: {', '.join(ENCODINGS)}")
        return ENCODINGS[kind](self, self.validate(arch) if xp is np else arch, xp)

    # -- JSON ---------------------------------------------------------------------------------

    def to_json(self, arch) -> dict:
        """The architecture as JSON-ready data naming every node's inputs and ops."""
        arch = self.validate(arch)
        cells = {}
        for t, (inputs, ops) in self.edges(arch).items():
            cell, rows, e = self.cells[t], [], 0
            for k, node in enumerate(cell.nodes):
                chosen = range(e, e + node.choose)
                rows.append(
                    {
                        "node": cell.n_inputs + k,
                        "inputs": [int(inputs[i]) for i in chosen],
                        "ops": [cell.ops[int(ops[i])] for i in chosen],
                    }
                )
                e += node.choose
            cells[t] = rows
        return {"space": self.name, "version": self.version, "cells": cells}

    def from_json(self, data: Mapping) -> np.ndarray:
        """Parses `to_json` output back into an architecture vector.

        Raises:
          InvalidArchitecture: naming the space, cell, node and value that do not fit.
        """
        where = f"architecture for space {self.name!r}"
        if data.get("space") != self.name or data.get("version") != self.version:
            raise InvalidArchitecture(
                f"{where}: it says space {data.get('space')!r} version {data.get('version')!r}, "
                f"expected {self.name!r} version {self.version}"
            )
        cells = data.get("cells")
        if not isinstance(cells, Mapping) or set(cells) != set(self.cells):
            got = sorted(cells) if isinstance(cells, Mapping) else cells
            raise InvalidArchitecture(f"{where}: 'cells' must have {sorted(self.cells)}, got {got}")
        arch = np.zeros(self.n_decisions, np.int32)
        nodes = {}
        for t, rows in cells.items():
            cell = self.cells[t]
            if not isinstance(rows, list) or len(rows) != cell.n_nodes:
                raise InvalidArchitecture(f"{where}: {t} cell needs {cell.n_nodes} node entries")
            for k, (row, node) in enumerate(zip(rows, cell.nodes)):
                index = cell.n_inputs + k
                label = f"{where}: {t} cell, node {index}"
                if not isinstance(row, Mapping) or row.get("node") != index:
                    raise InvalidArchitecture(f"{label}: entry {k} must be for node {index}")
                inputs, ops = list(row.get("inputs", ())), list(row.get("ops", ()))
                if len(inputs) != node.choose or len(ops) != node.choose:
                    raise InvalidArchitecture(
                        f"{label}: takes {node.choose} inputs and ops, got {inputs} and {ops}"
                    )
                for op in ops:
                    if op not in cell.ops:
                        raise InvalidArchitecture(
                            f"{label}: unknown op {op!r}; valid ops: {', '.join(cell.ops)}"
                        )
                bad = [i for i in inputs if i not in node.candidates]
                if bad:
                    raise InvalidArchitecture(
                        f"{label}: input {bad[0]!r} is not a candidate; allowed {node.candidates}"
                    )
                if node.distinct:
                    if len(set(inputs)) != len(inputs):
                        raise InvalidArchitecture(f"{label}: inputs {inputs} must be distinct")
                    # Summed inputs are unordered: store them in the candidates' order.
                    pairs = sorted(zip(inputs, ops), key=lambda p: node.candidates.index(p[0]))
                    inputs, ops = [i for i, _ in pairs], [o for _, o in pairs]
                nodes[(t, index)] = (inputs, ops)
        for i, d in enumerate(self.decisions):
            inputs, ops = nodes[(d.cell, d.node)]
            if d.kind == "op":
                arch[i] = d.choices.index(ops[d.slot])
            elif d.kind == "input":
                arch[i] = d.choices.index(inputs[d.slot])
            else:
                arch[i] = d.choices.index(tuple(inputs))
        return arch

    def describe(self, arch) -> str:
        """A one-line human-readable form, e.g. ``normal: 1<-conv3x3(0) 2<-...``."""
        parts = []
        for t, rows in self.to_json(arch)["cells"].items():
            nodes = " ".join(
                f"{r['node']}<-" + "+".join(f"{o}({i})" for i, o in zip(r["inputs"], r["ops"]))
                for r in rows
            )
            parts.append(f"{t}: {nodes}")
        return " | ".join(parts)


def _show(choices, limit=10) -> str:
    text = ", ".join(str(c) for c in choices[:limit])
    return text + (", ..." if len(choices) > limit else "")
