import numpy as np

from nas.cost import flops, parameters
from nas.supernet import child_net
from search_spaces import nb201

C, N, SHAPE = 4, 1, (8, 8, 1)


def _net(edge_op: int):
    """nb201 with skip connections but for the first edge, whose op is `edge_op`."""
    space = nb201(channels=C, cells_per_stage=N)
    return child_net(space, np.array([edge_op, 1, 0, 0, 0, 1]), SHAPE, 10, seed=0)


def test_one_more_conv3x3_edge_adds_its_weights_and_its_multiply_adds():
    skip, conv = _net(1), _net(3)
    # One 3x3 conv (no bias; BatchNorm without affine terms) in each stage's cell.
    widths = [C * 2**stage for stage in range(3)]
    assert parameters(conv) - parameters(skip) == sum(9 * w * w for w in widths) * N
    sides = [SHAPE[0] // 2**stage for stage in range(3)]  # 8x8, 4x4, 2x2
    # XLA counts the taps that meet the image, not the zero padding: 3s - 2 along a side s.
    taps = [(3 * s - 2) ** 2 for s in sides]
    conv_flops = sum(2 * w * w * t for w, t in zip(widths, taps, strict=True)) * N
    added = flops(conv, SHAPE) - flops(skip, SHAPE)
    assert conv_flops <= added <= 1.2 * conv_flops  # plus its ReLU and BatchNorm
