"""The DARTS cell: normal and reduction cells, 4 nodes each reading 2 distinct earlier nodes.

Reference: Liu, Simonyan & Yang, "DARTS: Differentiable Architecture Search", ICLR 2019. Each
cell reads the outputs of the previous two cells and concatenates its 4 intermediate nodes.
Reduction cells reduce their inputs with a stride-2 factorized reduce first and then apply
stride-1 ops (as ENAS does), so one compiled supernet serves every choice of inputs.
"""

from nas.space import SearchSpace, Skeleton, choice_cell

OPS = (
    "none",
    "max_pool3x3",
    "avg_pool3x3",
    "skip_connect",
    "sep_conv3x3",
    "sep_conv5x5",
    "dil_conv3x3",
    "dil_conv5x5",
)


def darts(channels: int = 16, cells_per_stage: int = 2, stages: int = 3) -> SearchSpace:
    """The DARTS space; the paper's search network has channels=16 and 8 cells in all."""
    # Every op here maps zeros to zeros (no biases, BatchNorm without affine terms).
    cell = choice_cell(
        4,
        OPS,
        n_inputs=2,
        choose=2,
        zero_op="none",
        zero_preserving=OPS,
        identity_op="skip_connect",
    )
    skeleton = Skeleton(channels, cells_per_stage, stages, reduction="cell")
    return SearchSpace("darts", {"normal": cell, "reduce": cell}, skeleton)
