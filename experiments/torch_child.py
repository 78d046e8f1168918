"""Our fixed child net and its training, in PyTorch eager: the reference `bench_vs_torch` times.

Mirrors `nas.supernet.Network` for a fixed architecture of an NB201-style space (one-input
cells whose nodes sum their edges, output the last node, residual reductions between stages):
a 3x3 convolution and BatchNorm stem; cells whose edges are none (``x * 0``), skip_connect,
ReLU-conv-BN 1x1 or 3x3, or 3x3 average pooling that does not count padding; NAS-Bench-201's
residual block between stages; BatchNorm, ReLU, global average pooling and a linear head.
Like ours, no convolution has a bias, and BatchNorm has no affine terms and no running
statistics (it normalises with the batch's statistics in training and evaluation alike).
The weights are initialised from the same distributions as ours; `load_jax_weights` copies
the weights of one of our child nets in (HWIO kernels to OIHW), to check that both compute
the same logits.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nas.space import SearchSpace
from nas.train import TrainConfig


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, affine=False, track_running_stats=False)


def _conv(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Conv2d:
    """A bias-free convolution padded by ``(kernel - 1) // 2``, He-normal as `nas.ops`."""
    conv = nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, bias=False)
    nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="relu")
    return conv


class ReLUConvBN(nn.Sequential):
    """ReLU, a k x k convolution (optionally strided), BatchNorm: `nas.ops.ReLUConvBN`."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1):
        super().__init__(nn.ReLU(), _conv(c_in, c_out, kernel, stride), _batch_norm(c_out))


class Zero(nn.Module):
    """Zeros shaped like the input, as ``x * 0`` like ours."""

    def forward(self, x):
        return x * 0


OPS = {
    "none": lambda c: Zero(),
    "skip_connect": lambda c: nn.Identity(),
    "conv1x1": lambda c: ReLUConvBN(c, c, 1),
    "conv3x3": lambda c: ReLUConvBN(c, c, 3),
    "avg_pool3x3": lambda c: nn.AvgPool2d(3, 1, 1, count_include_pad=False),
}


class Cell(nn.Module):
    """A one-input cell: each node sums its edges' ops on earlier nodes; the last is the output.

    Args:
      ops: the op name of each edge.
      sources: the node each edge reads (0 is the cell's input).
      targets: the node each edge feeds, in the cell's edge order.
      channels: the channels of every node.
    """

    def __init__(self, ops, sources, targets, channels: int):
        super().__init__()
        self.edges = nn.ModuleList([OPS[name](channels) for name in ops])
        self.sources, self.targets = tuple(sources), tuple(targets)

    def forward(self, x):
        states = [x] + [0] * max(self.targets)
        for op, source, target in zip(self.edges, self.sources, self.targets):
            states[target] = states[target] + op(states[source])
        return states[-1]


class ResidualReduction(nn.Module):
    """NAS-Bench-201's block between stages: `nas.cells.ResidualReduction`."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.a = ReLUConvBN(c_in, c_out, 3, stride=2)
        self.b = ReLUConvBN(c_out, c_out, 3)
        self.shortcut = nn.Conv2d(c_in, c_out, 1, stride=2, bias=False)  # = x[::2, ::2] @ W
        nn.init.normal_(self.shortcut.weight, std=0.1)

    def forward(self, x):
        return self.b(self.a(x)) + self.shortcut(x)


class TorchChild(nn.Module):
    """The fixed child net of `arch`, as `nas.supernet.child_net` builds it; NCHW input.

    Args:
      space: an NB201-style space (one-input cells, output the last node, residual reduction).
      arch: the architecture vector.
      input_shape: one example's shape, (H, W, C), as for our networks.
      num_classes: the number of output classes.
    """

    def __init__(self, space: SearchSpace, arch, input_shape, num_classes: int):
        super().__init__()
        cell, sk = space.cells["normal"], space.skeleton
        if set(space.cells) != {"normal"} or cell.n_inputs != 1 or cell.output != "last":
            raise ValueError(
                f"TorchChild mirrors NB201-style spaces (one one-input cell type whose output is "
                f"its last node); space {space.name!r} is not one"
            )
        if sk.reduction != "residual":
            raise ValueError(f"TorchChild needs residual reductions; got {sk.reduction!r}")
        sources, ops = space.edges(space.validate(arch))["normal"]
        names = [cell.ops[int(o)] for o in ops]
        channels = sk.channels
        self.stem = nn.Sequential(_conv(input_shape[-1], channels, 3), _batch_norm(channels))
        blocks = []
        for stage in range(sk.stages):
            if stage > 0:
                blocks.append(ResidualReduction(channels, channels * 2))
                channels *= 2
            for _ in range(sk.cells_per_stage):
                blocks.append(Cell(names, sources.tolist(), cell.edge_nodes(), channels))
        self.blocks = nn.Sequential(*blocks)
        self.last = nn.Sequential(_batch_norm(channels), nn.ReLU())
        self.head = nn.Linear(channels, num_classes)
        # Flax's default: LeCun-normal truncated at two standard deviations, zero bias.
        std = 1 / math.sqrt(channels) / 0.87962566103423978
        nn.init.trunc_normal_(self.head.weight, std=std, a=-2 * std, b=2 * std)
        nn.init.zeros_(self.head.bias)

    def forward(self, x):
        features = self.last(self.blocks(self.stem(x))).mean(dim=(2, 3))
        return self.head(features)


def make_optimizer(model: nn.Module, config: TrainConfig, total_steps: int):
    """`nas.train.make_optimizer` for SGD: Nesterov momentum and weight decay (applied after
    clipping, which `train_step` does), under the cosine or constant schedule."""
    if config.optimizer != "sgd":
        raise ValueError(f"optimizer {config.optimizer!r}: the PyTorch mirror has sgd only")
    opt = torch.optim.SGD(
        model.parameters(),
        lr=config.learning_rate,
        momentum=config.momentum,
        nesterov=True,
        weight_decay=config.weight_decay,
    )
    steps = max(total_steps, 1)

    def factor(step: int) -> float:  # optax.cosine_decay_schedule
        if config.schedule == "constant":
            return 1.0
        return 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


def train_step(model: nn.Module, opt, schedule, config: TrainConfig, x, y) -> torch.Tensor:
    """One optimizer step on (x, y) as `nas.train.Trainer.train_step`; returns the loss."""
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if config.grad_clip > 0:
        nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    opt.step()
    schedule.step()
    return loss.detach()


@torch.no_grad()
def accuracy(model: nn.Module, x, y, batch_size: int = 512) -> float:
    """Accuracy over all of (x, y) in batches of `batch_size`, as `Trainer.evaluate`."""
    hits = sum(
        int((model(x[i : i + batch_size]).argmax(-1) == y[i : i + batch_size]).sum())
        for i in range(0, len(x), batch_size)
    )
    return hits / len(x)


def load_jax_weights(model: TorchChild, child) -> None:
    """Copies the weights of our child net `child` (`nas.supernet.child_net`) into `model`."""

    def put(param: torch.Tensor, value, hwio: bool = True) -> None:
        value = np.asarray(value)
        param.data.copy_(torch.tensor(value.transpose(3, 2, 0, 1) if hwio else value))

    put(model.stem[0].weight, child.stem.w[...])
    for mine, theirs in zip(model.blocks, child.blocks):
        if isinstance(mine, ResidualReduction):
            put(mine.a[1].weight, theirs.a.w[...])
            put(mine.b[1].weight, theirs.b.w[...])
            put(mine.shortcut.weight, theirs.shortcut[...])
            continue
        for op, edge in zip(mine.edges, theirs.edges):
            if isinstance(op, ReLUConvBN):
                put(op[1].weight, edge.ops[0].w[...])
    put(model.head.weight, np.asarray(child.head.kernel[...]).T, hwio=False)
    put(model.head.bias, child.head.bias[...], hwio=False)
