"""The ENAS micro cell: 5 blocks, each summing 2 ops on 2 inputs that may repeat.

Reference: Pham et al., "Efficient Neural Architecture Search via Parameter Sharing", ICML 2018.
The cell outputs the concatenation of its loose ends (blocks no other block reads); reduction
cells reduce their inputs first, as in the paper's code.
"""

from nas.space import SearchSpace, Skeleton, choice_cell

OPS = ("sep_conv3x3", "sep_conv5x5", "avg_pool3x3", "max_pool3x3", "identity")


def enas(channels: int = 16, cells_per_stage: int = 2, stages: int = 3) -> SearchSpace:
    """The ENAS micro space (normal and reduction cells)."""
    cell = choice_cell(
        5,
        OPS,
        n_inputs=2,
        choose=2,
        distinct=False,
        output="loose_ends",
        zero_preserving=OPS,
        identity_op="identity",
    )
    skeleton = Skeleton(channels, cells_per_stage, stages, reduction="cell")
    return SearchSpace("enas", {"normal": cell, "reduce": cell}, skeleton)
