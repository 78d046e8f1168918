"""The network of a search space: a weight-sharing supernet, or a fixed child for one arch.

`Network(space, ..., arch=None)` is the supernet: every candidate op of every edge exists once,
and ``model(x, arch)`` runs the architecture `arch` (a traced int vector), so one jitted step
serves every architecture without a new XLA compile. `Network(space, ..., arch=a)` is the child
net of `a` alone, built from the same modules, for training from scratch and for export;
`child_from_supernet` copies the supernet's weights into it.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from nas.cells import (
    BRANCHINGS,
    CellBlock,
    CellStack,
    ResidualReduction,
    Stem,
    out_channels_factor,
)
from nas.conv import batch_norm
from nas.ops import normal_init
from nas.space import SearchSpace


class Network(nnx.Module):
    """Stem, stages of cells with reductions between them, and a classifier head.

    Args:
      space: the search space (cells and skeleton).
      input_shape: one example's shape, (H, W, C).
      num_classes: the number of output classes.
      arch: None for the supernet; an architecture vector for a fixed child net.
      scan_edges: supernet only: stack each cell's edges and run them with `lax.scan`, so XLA
        compiles one edge per cell. On the 2-core CPU this compiled DARTS cells 3-4x faster
        and made each nb201 train step about 30% slower; worth it where compile time
        dominates (large cells, short searches).
      scan_cells: supernet only: run each stage's run of identical cells as one `CellStack`
        (`lax.scan` over stacked weights), so XLA compiles one cell per stage. nb201 on
        digits (16 channels, 5 cells a stage, 2-core CPU): the train step compiled in 6.4 s
        against 13.3 s and ran 14% slower (41.5 against 36.4 ms over 4 architectures), most
        of it slicing each cell's weights and residuals out of their stacks and back.
      branching: supernet only: how each edge picks its op (`nas.cells`): "switch" runs the
        chosen op alone under a conditional; "select" runs every op and keeps the chosen
        output, with no conditional (for accelerators; `experiments.bench_branching` measures
        both against the child net).
      rngs: the random streams for parameter initialisation.
    """

    def __init__(
        self,
        space: SearchSpace,
        input_shape,
        num_classes: int,
        *,
        arch=None,
        scan_edges=False,
        scan_cells=False,
        branching="switch",
        rngs,
    ):
        if len(input_shape) != 3:
            raise ValueError(
                f"space {space.name!r} builds convolutional cells and needs images (H, W, C); "
                f"got examples of shape {tuple(input_shape)}"
            )
        self.space, self.input_shape, self.num_classes = space, tuple(input_shape), num_classes
        self.scan_edges, self.scan_cells = scan_edges, scan_cells
        if branching not in BRANCHINGS:
            raise ValueError(
                f"unknown branching {branching!r}; valid values: {', '.join(BRANCHINGS)}"
            )
        self.branching = branching
        # (cell kind, edges) pairs, not a dict: equal child nets get equal, hashable graphs,
        # and so share their compiled steps (`nas.train`).
        self.fixed = None if arch is None else tuple(_static_edges(space, arch).items())
        sk, (size, _, c_in) = space.skeleton, input_shape
        channels = sk.channels
        self.stem = Stem(c_in, channels, rngs=rngs)
        outputs = [(size, channels)]  # (spatial size, channels) of every block so far
        blocks, kinds = [], []
        for stage in range(sk.stages):
            if stage > 0:
                channels, size = channels * 2, (size + 1) // 2
                if sk.reduction == "residual":
                    blocks.append(ResidualReduction(outputs[-1][1], channels, rngs=rngs))
                    kinds.append(None)
                    outputs.append((size, channels))
                else:
                    kind = "reduce" if "reduce" in space.cells else "normal"
                    self._add_cell(kind, outputs, size, channels, blocks, kinds, rngs)
            remaining = sk.cells_per_stage
            while remaining:
                length = remaining if self._stackable(outputs, size, channels) else 1
                self._add_cell("normal", outputs, size, channels, blocks, kinds, rngs, length)
                remaining -= length
        self.blocks = nnx.List(blocks)
        self.kinds = tuple(kinds)
        self.head = nnx.Linear(outputs[-1][1], num_classes, kernel_init=_head_init, rngs=rngs)

    def _stackable(self, outputs, size, channels) -> bool:
        """Whether the next normal cells of a stage can form a `CellStack`: the supernet's
        with `scan_cells`, once every cell input has the shape of the cell's output."""
        cell = self.space.cells["normal"]
        out = (size, channels * out_channels_factor(cell))
        return (
            self.scan_cells
            and self.fixed is None
            and all(shape == out for shape in _last(outputs, cell.n_inputs))
        )

    def _add_cell(self, kind, outputs, size, channels, blocks, kinds, rngs, length=1):
        cell = self.space.cells[kind]
        in_shapes = _last(outputs, cell.n_inputs)
        if self.fixed is None:
            op_names = [cell.ops] * cell.n_edges
        else:
            op_names = [(cell.ops[o],) for o in dict(self.fixed)[kind][1]]

        def make(rngs):
            return CellBlock(
                cell,
                in_shapes,
                size,
                channels,
                op_names,
                scan_edges=self.scan_edges and self.fixed is None,
                branching=self.branching,
                rngs=rngs,
            )

        blocks.append(make(rngs) if length == 1 else CellStack(length, make, rngs))
        kinds.append(kind)
        outputs.extend([(size, channels * out_channels_factor(cell))] * length)

    def __call__(self, x, arch=None):
        """Logits for images `x`; the supernet needs `arch`, a child net ignores it."""
        if self.fixed is not None:
            edges = dict(self.fixed)
        elif arch is None:
            raise ValueError("the supernet needs an architecture: call model(x, arch)")
        else:
            edges = self.space.edges(jnp.asarray(arch), xp=jnp)
        outputs = [self.stem(x)]
        for block, kind in zip(self.blocks, self.kinds):
            if kind is None:
                outputs.append(block(outputs[-1]))
                continue
            inputs, ops = edges[kind]
            out = block(_last(outputs, block.cell.n_inputs), inputs, ops)
            outputs.extend(out if isinstance(block, CellStack) else [out])
        # NAS-Bench-201's last BatchNorm and ReLU keep summed skip paths from blowing up the logits.
        features = jnp.mean(jax.nn.relu(batch_norm(outputs[-1])), axis=(1, 2))
        return self.head(features)


def _head_init(key, shape, dtype):
    """LeCun-normal weights (variance 1 / fan-in), drawn as `normal_init` draws."""
    del dtype  # float32, as every parameter
    return normal_init(key, shape, 1 / math.sqrt(shape[0]))


def _last(outputs, n):
    """The last `n` entries, repeating the first when there are fewer (the stem feeds both)."""
    return [outputs[max(len(outputs) - n + i, 0)] for i in range(n)]


def _static_edges(space: SearchSpace, arch) -> dict:
    arch = space.validate(arch)
    return {
        t: (tuple(int(i) for i in inputs), tuple(int(o) for o in ops))
        for t, (inputs, ops) in space.edges(arch).items()
    }


def supernet(
    space: SearchSpace,
    input_shape,
    num_classes: int,
    *,
    seed=0,
    scan_edges=False,
    scan_cells=False,
    branching="switch",
) -> Network:
    """The weight-sharing supernet of `space` (see `Network` for the options)."""
    return Network(
        space,
        input_shape,
        num_classes,
        scan_edges=scan_edges,
        scan_cells=scan_cells,
        branching=branching,
        rngs=nnx.Rngs(seed),
    )


def child_net(space: SearchSpace, arch, input_shape, num_classes: int, *, seed=0) -> Network:
    """The fixed network of one architecture, freshly initialised."""
    return Network(space, input_shape, num_classes, arch=arch, rngs=nnx.Rngs(seed))


def child_from_supernet(net: Network, arch) -> Network:
    """The child net of `arch` holding the supernet's weights for that architecture."""
    arch = net.space.validate(arch)
    child = Network(net.space, net.input_shape, net.num_classes, arch=arch, rngs=nnx.Rngs(0))
    ops = {t: o for t, (_, o) in net.space.edges(arch).items()}
    nnx.update(child.stem, nnx.state(net.stem))
    nnx.update(child.head, nnx.state(net.head))
    theirs_blocks, kinds = [], []
    for block, kind in zip(net.blocks, net.kinds):
        cells = block.unstacked() if isinstance(block, CellStack) else [block]
        theirs_blocks.extend(cells)
        kinds.extend([kind] * len(cells))
    for mine, theirs, kind in zip(child.blocks, theirs_blocks, kinds, strict=True):
        if kind is None:
            nnx.update(mine, nnx.state(theirs))
            continue
        for pre_mine, pre_theirs in zip(mine.pre, theirs.pre):
            if pre_mine is not None:
                nnx.update(pre_mine, nnx.state(pre_theirs))
        for e, edge in enumerate(mine.edges):
            if net.scan_edges:
                stacked = nnx.state(theirs.edges.ops[int(ops[kind][e])])
                weights = jax.tree.map(lambda a, e=e: a[e], stacked)
            else:
                weights = nnx.state(theirs.edges[e].ops[int(ops[kind][e])])
            nnx.update(edge.ops[0], weights)
    return child
