"""The hand-designed contender and what each contender costs.

The hand-designed network is a ResNet: NAS-Bench-201's skeleton (a stem, three stages, a
residual block with a stride-2 convolution between them) with the basic residual block as its
cell, x + conv3x3(conv3x3(x)), written as an architecture of the nb201 space so that it trains
through exactly the same code and recipe as the searched ones.
"""

from __future__ import annotations

from nas.cost import flops, parameters
from nas.space import SearchSpace, load_space
from nas.supernet import child_net

# node 1 = conv3x3(input); node 3 (the output) = input + conv3x3(node 1); node 2 unused.
RESNET = {
    "space": "nb201",
    "version": 1,
    "cells": {
        "normal": [
            {"node": 1, "inputs": [0], "ops": ["conv3x3"]},
            {"node": 2, "inputs": [0, 1], "ops": ["none", "none"]},
            {"node": 3, "inputs": [0, 1, 2], "ops": ["skip_connect", "conv3x3", "none"]},
        ]
    },
}


def cost(space: SearchSpace, arch, input_shape, num_classes: int) -> dict:
    """The parameters and forward FLOPs (per example) of `arch`'s network in `space`."""
    net = child_net(space, arch, input_shape, num_classes, seed=0)
    return {"params": parameters(net), "flops": flops(net, input_shape)}


def resnet(cells: int, target_params: float, max_params: int, input_shape, num_classes: int):
    """The ResNet whose parameter count is closest to `target_params` without passing
    `max_params`: ``(space, arch, cost)``, the space sized by the ResNet's channels."""
    sized = []  # (params, channels), growing with the channels
    for channels in range(2, 257, 2):
        space = load_space("nb201", channels=channels, cells_per_stage=cells)
        net = child_net(space, space.from_json(RESNET), input_shape, num_classes, seed=0)
        if parameters(net) > max_params:
            break
        sized.append((parameters(net), channels))
        if sized[-1][0] >= target_params:
            break
    if not sized:
        raise ValueError(f"no ResNet with {cells} cells a stage fits in {max_params} parameters")
    _, channels = min(sized, key=lambda pc: abs(pc[0] - target_params))
    space = load_space("nb201", channels=channels, cells_per_stage=cells)
    arch = space.from_json(RESNET)
    return space, arch, cost(space, arch, input_shape, num_classes)
