"""The building blocks of a network: edges, cells, input preprocessing and reductions.

One code path serves the supernet and a fixed child net. In the supernet every edge holds all
candidate ops and the architecture arrives as traced integers, so one compiled step serves
every architecture. How an edge picks its op is its `branching`: "switch" runs only the chosen
op, under `jax.lax.switch` (the CPU's choice: it computes no more than the child net; edges of
ReLU-conv-BN and parameter-free ops through `nas.switch.switch_ops`, with fewer residuals);
"select" runs every op and keeps the chosen output by indexing, a program without
conditionals (for GPUs, where the switch supernet's step measured 2.7-4.2x the child net's on
an H200; whether "select" does better there is not yet measured). In a child net every edge
holds only its chosen op and the choices are Python ints. Both hold the same modules with the
same parameter shapes, so weights move between them one edge at a time
(`nas.supernet.child_from_supernet`). A supernet may run a stage's identical cells as one
`CellStack`, a scan over their stacked weights (`Network`'s `scan_cells`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from nas.conv import batch_norm, conv2d
from nas.ops import ReLUConvBN, make_op, normal_init
from nas.space import Cell
from nas.switch import call_op, switch_ops, switchable

BRANCHINGS = ("switch", "select")


def branch(index, branches, *operands, branching: str):
    """``branches[index](*operands)``, by a conditional or by selecting among every result."""
    if branching == "switch":
        return jax.lax.switch(index, branches, *operands)
    # Indexing the stacked outputs compiled 4x faster on the CPU than a chain of `jnp.where`.
    return jnp.stack([f(*operands) for f in branches])[index]


class Edge(nnx.Module):
    """The ops of one edge: all candidates (supernet) or just the chosen one (child)."""

    def __init__(self, op_names: tuple[str, ...], channels: int, *, branching="switch", rngs):
        self.ops = nnx.List([make_op(name, channels, rngs=rngs) for name in op_names])
        self.branching = branching

    @property
    def switched(self) -> bool:
        """Whether the edge runs its chosen op by `switch_ops`, whose backward pass keeps
        only the edge's input and output and one number per channel."""
        return len(self.ops) > 1 and self.branching == "switch" and switchable(self.ops)

    def __call__(self, x, op):
        if len(self.ops) == 1:
            return self.ops[0](x)
        if self.switched:
            return switch_ops(list(self.ops), op, x)
        return branch(
            op, [lambda y, f=f: call_op(f, y) for f in self.ops], x, branching=self.branching
        )


class FactorizedReduce(nnx.Module):
    """Halves the spatial size with two offset stride-2 1x1 convolutions (DARTS, ENAS)."""

    def __init__(self, c_in: int, c_out: int, *, rngs: nnx.Rngs):
        self.a = ReLUConvBN(c_in, c_out // 2, 1, rngs=rngs)
        self.b = ReLUConvBN(c_in, c_out - c_out // 2, 1, rngs=rngs)

    def __call__(self, x):
        shifted = jnp.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)))[:, 1:, 1:]
        return jnp.concatenate([self.a(x[:, ::2, ::2]), self.b(shifted[:, ::2, ::2])], -1)


class ResidualReduction(nnx.Module):
    """NAS-Bench-201's residual block between stages: doubles channels, halves the size."""

    def __init__(self, c_in: int, c_out: int, *, rngs: nnx.Rngs):
        self.a = ReLUConvBN(c_in, c_out, 3, stride=2, rngs=rngs)
        self.b = ReLUConvBN(c_out, c_out, 3, rngs=rngs)
        self.shortcut = nnx.Param(normal_init(rngs.params(), (1, 1, c_in, c_out), 0.1))

    def __call__(self, x):
        return self.b(self.a(x)) + conv2d(x[:, ::2, ::2], self.shortcut[...])


def preprocess(c_in: int, size_in: int, c_out: int, size_out: int, always: bool, rngs):
    """The module that brings one cell input to the cell's channels and size, or None."""
    if size_in > size_out:
        return FactorizedReduce(c_in, c_out, rngs=rngs)
    if always or c_in != c_out:
        return ReLUConvBN(c_in, c_out, 1, rngs=rngs)
    return None


def out_channels_factor(cell: Cell) -> int:
    """A cell's output channels over its nodes' channels."""
    return 1 if cell.output == "last" else cell.n_nodes


class CellBlock(nnx.Module):
    """One cell of the network.

    Args:
      cell: the cell description.
      in_shapes: (spatial size, channels) of each cell input.
      size: the cell's spatial size (smaller than the inputs' in a reduction cell).
      channels: the channels of every node.
      op_names: per edge, the ops it holds: every candidate (supernet) or the chosen one.
      scan_edges: stack the supernet's edges and run them with `lax.scan` (see `Network`).
      branching: how the supernet picks ops and inputs, "switch" or "select" (module docstring).
      rngs: the random streams for parameter initialisation.
    """

    def __init__(
        self,
        cell: Cell,
        in_shapes,
        size,
        channels,
        op_names,
        *,
        scan_edges=False,
        branching="switch",
        rngs,
    ):
        self.cell, self.branching = cell, branching
        always = cell.n_inputs > 1
        self.pre = nnx.List([preprocess(c, s, channels, size, always, rngs) for s, c in in_shapes])
        if scan_edges:
            # Every edge holds every op, stacked along a leading edge axis, and a `lax.scan`
            # runs the edges, so XLA compiles one edge per cell rather than n_edges.
            self.edges = _stacked_edges(cell.n_edges, cell.ops, channels, branching, rngs)
        else:
            self.edges = nnx.List(
                [Edge(names, channels, branching=branching, rngs=rngs) for names in op_names]
            )

    def __call__(self, inputs, edge_inputs, edge_ops):
        """Applies the cell; `edge_inputs`/`edge_ops` are traced arrays or Python ints."""
        cell = self.cell
        states = [x if pre is None else pre(x) for x, pre in zip(inputs, self.pre)]
        if not isinstance(self.edges, nnx.List):
            return self._scan_edges(states, edge_inputs, edge_ops)
        e = 0
        for node in cell.nodes:
            total = 0
            for slot in range(node.choose):
                x = _select(states, node, slot, edge_inputs[e], self.branching)
                total = total + self.edges[e](x, edge_ops[e])
                e += 1
            states.append(total)
        return self._output(states[cell.n_inputs :], edge_inputs)

    def _scan_edges(self, states, edge_inputs, edge_ops):
        cell = self.cell
        graphdef, stacked = nnx.split(self.edges)
        buffer = jnp.stack(states + [jnp.zeros_like(states[0])] * cell.n_nodes)

        def run_edge(buffer, edge):
            params, source, op, node = edge
            x = jax.lax.dynamic_index_in_dim(buffer, source, keepdims=False)
            y = nnx.merge(graphdef, params)(x, op)
            return jax.lax.dynamic_update_index_in_dim(buffer, buffer[node] + y, node, 0), None

        nodes = jnp.asarray(cell.edge_nodes(), jnp.int32)
        buffer, _ = jax.lax.scan(run_edge, buffer, (stacked, edge_inputs, edge_ops, nodes))
        return self._output(list(buffer[cell.n_inputs :]), edge_inputs)

    @property
    def switched(self) -> bool:
        """Whether every edge of the cell runs its op by `switch_ops` (`Edge.switched`)."""
        return isinstance(self.edges, nnx.List) and all(e.switched for e in self.edges)

    def _output(self, nodes, edge_inputs):
        cell = self.cell
        if cell.output == "last":
            return nodes[-1]
        if cell.output == "concat":
            return jnp.concatenate(nodes, -1)
        read = [jnp.any(jnp.asarray(edge_inputs) == cell.n_inputs + k) for k in range(len(nodes))]
        return jnp.concatenate([n * (1 - r) for n, r in zip(nodes, read)], -1)


# The largest cell input (bytes, the whole batch) whose cells' residuals a `CellStack` keeps.
STACKED_RESIDUALS_MAX_BYTES = 2**20


class CellStack(nnx.Module):
    """`length` cells in a row with equal shapes and ops, their parameters stacked along a
    leading axis and run by one `lax.scan`: XLA compiles one cell for the whole run.

    Args:
      length: the number of cells.
      make_cell: builds one `CellBlock` from its random streams.
      rngs: the random streams for parameter initialisation, drawn from cell by cell as
        unstacked cells would (so the weights are those of the unscanned network).
    """

    def __init__(self, length: int, make_cell, rngs: nnx.Rngs):
        # Built one by one and stacked on the host rather than under `nnx.vmap`, whose
        # initialisers compiled anew: the nb201 supernet on digits (5 cells a stage) built in
        # 5.1 s this way, 7.6 s under `nnx.vmap` and 4.9 s unscanned.
        cells = [make_cell(rngs) for _ in range(length)]
        states = [nnx.state(c) for c in cells]
        stacked = jax.tree.map(lambda *a: jnp.asarray(jax.device_get(a)), *states)
        self.cells, self.length = nnx.merge(nnx.graphdef(cells[0]), stacked), length

    @property
    def cell(self) -> Cell:
        return self.cells.cell

    def __call__(self, inputs, edge_inputs, edge_ops):
        """The last ``len(inputs)`` outputs after running every cell on `inputs`."""
        graphdef, stacked = nnx.split(self.cells)

        def run_cell(carry, params):
            out = nnx.merge(graphdef, params)(list(carry), edge_inputs, edge_ops)
            return (*carry[1:], out), None

        body = run_cell if self.stacks_residuals(inputs[0]) else jax.checkpoint(run_cell)
        carry, _ = jax.lax.scan(body, tuple(inputs), stacked)
        return list(carry)

    def stacks_residuals(self, x) -> bool:
        """Whether the scan keeps each cell's residuals for the backward pass, stacked, rather
        than recomputing the cell there (`jax.checkpoint`), for cell inputs like `x`.

        It does where they are few and small: in cells whose edges all run by `switch_ops`
        (which keeps an edge's input and output), on inputs of at most
        `STACKED_RESIDUALS_MAX_BYTES`. Edges of other ops keep every branch's residuals, and
        large activations cost more to copy into the stack than to recompute. nb201 supernet
        train steps, 16 channels, 5 cells a stage, batch 64, 2-core CPU, side by side over 4
        architectures: on digits (inputs of 256 KiB or less) 5-7% faster stacked (two runs);
        on 32x32x3 stacked at every stage 11.5% slower, at its 1 MiB stage alone 0.1% slower,
        at its 2 MiB stage too 2.4% slower.
        """
        return self.cells.switched and x.size * x.dtype.itemsize <= STACKED_RESIDUALS_MAX_BYTES

    def unstacked(self) -> list[CellBlock]:
        """Each cell as its own `CellBlock`, holding its slice of the stacked parameters."""
        graphdef, stacked = nnx.split(self.cells)
        return [
            nnx.merge(graphdef, jax.tree.map(lambda a, i=i: a[i], stacked))
            for i in range(self.length)
        ]


def _stacked_edges(n_edges: int, op_names, channels: int, branching: str, rngs) -> Edge:
    """`n_edges` edges holding every op, their parameters stacked along a leading axis."""

    @nnx.split_rngs(splits=n_edges)
    @nnx.vmap(in_axes=(0,), out_axes=0)
    def make(rngs):
        return Edge(op_names, channels, branching=branching, rngs=rngs)

    return make(rngs)


def _select(states, node, slot, source, branching):
    """The input of one edge: static where the source is fixed, else a branch over sources."""
    if node.fixed_inputs:
        return states[node.candidates[slot]]
    if isinstance(source, int):
        return states[source]
    position = jnp.asarray(_positions(node.candidates))[source]
    return branch(position, [lambda c=c: states[c] for c in node.candidates], branching=branching)


def _positions(candidates) -> list[int]:
    table = [0] * (max(candidates) + 1)
    for p, c in enumerate(candidates):
        table[c] = p
    return table


class Stem(nnx.Module):
    """A 3x3 convolution and batch norm from the input image to the first stage."""

    def __init__(self, c_in: int, c_out: int, *, rngs: nnx.Rngs):
        shape = (3, 3, c_in, c_out)
        self.w = nnx.Param(normal_init(rngs.params(), shape, jnp.sqrt(2 / (9 * c_in))))

    def __call__(self, x):
        return batch_norm(conv2d(x, self.w[...]))
