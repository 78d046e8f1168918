"""NAS-Bench-201's cell: 4 nodes, an op on each of the 6 edges, 5 ops, 15,625 cells.

Reference: Dong & Yang, "NAS-Bench-201: Extending the Scope of Reproducible Neural Architecture
Search", ICLR 2020. The skeleton is theirs: a stem, 3 stages of N cells, and a residual block
with a stride-2 convolution between stages.
"""

from nas.space import SearchSpace, Skeleton, dense_cell

OPS = ("none", "skip_connect", "conv1x1", "conv3x3", "avg_pool3x3")


def nb201(channels: int = 16, cells_per_stage: int = 5) -> SearchSpace:
    """The NAS-Bench-201 space; the paper's network has channels=16, cells_per_stage=5."""
    # Every op here maps zeros to zeros (no biases, BatchNorm without affine terms).
    cell = dense_cell(3, OPS, zero_op="none", zero_preserving=OPS, identity_op="skip_connect")
    skeleton = Skeleton(channels, cells_per_stage, stages=3, reduction="residual")
    return SearchSpace("nb201", {"normal": cell}, skeleton)
