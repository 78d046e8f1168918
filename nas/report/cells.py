"""A diagram of an architecture's cells: nodes as circles, each edge labelled with its op.

Drawn from the public `SearchSpace` API only (`to_json` and each `Cell`'s declaration), so it
works for every space, a user's own included. Nodes sit on a line in their order: the cell's
inputs, its intermediate nodes, then the cell output; an edge arcs over (or under) the nodes it
skips. Edges whose op outputs zeros are left out.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch

from nas.space import Cell, SearchSpace

# Op names that mean "no edge" even where a space does not declare its `zero_op`.
ZERO_OPS = ("none", "zero")
RADIUS = 0.22  # of a node circle, in units of the distance between two nodes


@dataclasses.dataclass(frozen=True)
class Edge:
    """An edge from node `source` into node `target` applying `op`."""

    source: int
    target: int
    op: str


def cell_edges(space: SearchSpace, arch) -> dict[str, list[Edge]]:
    """Per cell type, the edges to draw: every chosen input of every node whose op is not
    the cell's zero op."""
    edges = {}
    for cell_type, rows in space.to_json(arch)["cells"].items():
        zero = {space.cells[cell_type].zero_op, *ZERO_OPS}
        edges[cell_type] = [
            Edge(source, row["node"], op)
            for row in rows
            for source, op in zip(row["inputs"], row["ops"])
            if op not in zero
        ]
    return edges


def output_nodes(cell: Cell, rows: list[dict]) -> list[int]:
    """The nodes that form the cell's output, for the architecture's `to_json` rows."""
    intermediate = [row["node"] for row in rows]
    if cell.output == "last":
        return intermediate[-1:]
    if cell.output == "concat":
        return intermediate
    read = {source for row in rows for source in row["inputs"]}
    return [node for node in intermediate if node not in read]


def cells_figure(space: SearchSpace, arch, title: str) -> Figure:
    """One panel per cell type of `space` showing the cells of `arch`."""
    rows = space.to_json(arch)["cells"]
    edges = cell_edges(space, arch)
    width = max(c.n_inputs + c.n_nodes for c in space.cells.values()) + 1
    fig = Figure(figsize=(2.0 * width, 3.8 * len(rows)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(rows), 1))
    for ax, (cell_type, cell_rows) in zip(axes, rows.items()):
        _draw_cell(ax, space.cells[cell_type], cell_rows, edges[cell_type])
        ax.set_title(f"{cell_type} cell ({len(edges[cell_type])} edges)")
    fig.suptitle(title)
    return fig


def _draw_cell(ax, cell: Cell, rows: list[dict], edges: list[Edge]) -> None:
    out = cell.n_inputs + cell.n_nodes  # the position of the cell's output
    circles = {}
    for node in range(out + 1):
        kind = "input" if node < cell.n_inputs else "output" if node == out else "node"
        color = {"input": "#cfe2f3", "node": "white", "output": "#d9ead3"}[kind]
        circles[node] = ax.add_patch(Circle((node, 0), RADIUS, fc=color, ec="black", zorder=5))
        label = f"in {node}" if kind == "input" else "out" if kind == "output" else str(node)
        ax.text(node, 0, label, ha="center", va="center", fontsize=9, zorder=6)
    reach, seen = 0.5, {}
    for k, edge in enumerate(edges):
        repeat = seen[edge.source, edge.target] = seen.get((edge.source, edge.target), -1) + 1
        span = edge.target - edge.source
        rad = (-1 if k % 2 == 0 else 1) * (0.5 / span + 0.25 + 0.15 * repeat)
        _arrow(ax, circles[edge.source], circles[edge.target], rad, "-", "black")
        # The middle of an arc3 curve lies rad/2 chord lengths off the chord.
        height = -rad * span / 2
        reach = max(reach, abs(height) + 0.3)
        ax.text(
            (edge.source + edge.target) / 2,
            height,
            edge.op,
            ha="center",
            va="center",
            fontsize=8,
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85},
            zorder=4,
        )
    for node in output_nodes(cell, rows):
        _arrow(ax, circles[node], circles[out], 0.0 if node == out - 1 else 0.3, "--", "tab:gray")
    ax.set_xlim(-0.5, out + 0.5)
    ax.set_ylim(-reach, reach)
    ax.set_aspect("equal")
    ax.axis("off")


def _arrow(ax, source: Circle, target: Circle, rad: float, style: str, color: str) -> None:
    ax.add_patch(
        FancyArrowPatch(
            source.center,
            target.center,
            connectionstyle=f"arc3,rad={rad}",
            arrowstyle="-|>",
            mutation_scale=12,
            linestyle=style,
            color=color,
            patchA=source,
            patchB=target,
            shrinkA=0,
            shrinkB=0,
            zorder=2,
        )
    )
