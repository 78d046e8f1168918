"""Candidate ops by name: each a Flax NNX module mapping (N, H, W, C) to the same shape.

Every op is built from the CPU-friendly primitives in `nas.conv`, so it runs at full speed
inside the `lax.switch` that picks an edge's op in the supernet. No op has a bias and BatchNorm
has no affine terms, so every op maps zeros to zeros (the canonical key relies on it).

A user adds an op by registering a factory ``f(channels, *, rngs) -> nnx.Module``::

    nas.ops.OPS["conv7x7"] = lambda c, *, rngs: ReLUConvBN(c, c, 7, rngs=rngs)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
from flax import nnx

from nas.conv import (
    avg_pool,
    batch_norm,
    batch_norm_fwd,
    batch_norm_grad,
    conv2d,
    depthwise_conv2d,
    max_pool,
)

_normal_draw = jax.jit(lambda key, size: jax.random.normal(key, (size,)), static_argnums=1)


def normal_init(key, shape, std) -> jax.Array:
    """The values of ``jax.random.normal(key, shape) * std``, drawn with few compiles.

    Why: drawn eagerly, every new shape compiled its own random kernel; the nb201 supernet on
    digits (16 channels, 5 cells a stage) built in 4.9 s that way and in 1.0 s this way, which
    draws at the size rounded up to a power of 16 (three compiles there), then cuts and
    scales on the host. JAX's counter-based threefry (``jax_threefry_partitionable``, its
    default) gives each element the value of the direct draw (tested).
    """
    if isinstance(key, jax.core.Tracer):  # under a transform (`nnx.vmap`): no host round trip
        return jax.random.normal(key, shape) * std
    size = math.prod(shape)
    bucket = 16 ** -(-max(size - 1, 0).bit_length() // 4)  # 1, 16, 256, 4096, ...
    draw = jax.device_get(_normal_draw(key, bucket))
    # `device_put`, not `jnp.asarray`, which compiles a copy for every new shape.
    return jax.device_put((draw[:size].reshape(shape) * jax.device_get(std)).astype(draw.dtype))


def _he_normal(key, shape, fan_in) -> jax.Array:
    return normal_init(key, shape, math.sqrt(2.0 / fan_in))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def relu_conv_bn(x, w, stride):
    """ReLU, convolution, batch norm; the backward pass keeps the input, the output and the
    batch norm's ``1 / std``, no copy of ``relu(x)`` or of the conv output."""
    return batch_norm(conv2d(jax.nn.relu(x), w, stride=stride))


def relu_conv_bn_forward(x, w, stride):
    """`relu_conv_bn`'s output and its batch norm's per-channel ``1 / std``: with the input
    and the weights, all that `relu_conv_bn_backward` needs."""
    return batch_norm_fwd(conv2d(jax.nn.relu(x), w, stride=stride))


def relu_conv_bn_backward(x, w, y, inv_std, g, stride):
    """The gradients for x and w of `relu_conv_bn` from its output `y`, ``1 / std`` and the
    output's cotangent `g`."""
    dz = batch_norm_grad(y, inv_std, g)
    # The conv's forward inside this vjp is unused and XLA removes it.
    dr, dw = jax.vjp(lambda r, w: conv2d(r, w, stride=stride), jax.nn.relu(x), w)[1](dz)
    return dr * (x > 0), dw


def _relu_conv_bn_fwd(x, w, stride):
    y, inv_std = relu_conv_bn_forward(x, w, stride)
    return y, (x, w, y, inv_std)


def _relu_conv_bn_bwd(stride, residuals, g):
    return relu_conv_bn_backward(*residuals, g, stride)


relu_conv_bn.defvjp(_relu_conv_bn_fwd, _relu_conv_bn_bwd)


class ReLUConvBN(nnx.Module):
    """ReLU, a k x k convolution (optionally strided), batch normalisation."""

    def __init__(self, c_in: int, c_out: int, kernel: int, *, stride=1, rngs: nnx.Rngs):
        shape = (kernel, kernel, c_in, c_out)
        self.w = nnx.Param(_he_normal(rngs.params(), shape, kernel * kernel * c_in))
        self.stride = stride

    def __call__(self, x):
        return relu_conv_bn(x, self.w[...], self.stride)


class DilConv(nnx.Module):
    """ReLU, a k x k depthwise convolution with dilation, a 1x1 convolution, batch norm."""

    def __init__(self, channels: int, kernel: int, *, dilation: int, rngs: nnx.Rngs):
        dw_shape, pw_shape = (kernel, kernel, channels), (1, 1, channels, channels)
        self.dw = nnx.Param(_he_normal(rngs.params(), dw_shape, kernel * kernel))
        self.pw = nnx.Param(_he_normal(rngs.params(), pw_shape, channels))
        self.dilation = dilation

    def __call__(self, x):
        x = depthwise_conv2d(jax.nn.relu(x), self.dw[...], dilation=self.dilation)
        return batch_norm(conv2d(x, self.pw[...]))


class SepConv(nnx.Module):
    """Two stacked dilation-1 `DilConv`s, as DARTS's separable convolution."""

    def __init__(self, channels: int, kernel: int, *, rngs: nnx.Rngs):
        self.first = DilConv(channels, kernel, dilation=1, rngs=rngs)
        self.second = DilConv(channels, kernel, dilation=1, rngs=rngs)

    def __call__(self, x):
        return self.second(self.first(x))


class Pool(nnx.Module):
    """3x3 max or average pooling, stride 1 (no parameters)."""

    def __init__(self, kind: str):
        self.fn = {"max": max_pool, "avg": avg_pool}[kind]

    def __call__(self, x):
        return self.fn(x, size=3)


class Identity(nnx.Module):
    """Returns its input."""

    def __call__(self, x):
        return x


class Zero(nnx.Module):
    """Returns zeros; written as ``x * 0`` so XLA does not constant-fold what follows."""

    def __call__(self, x):
        return x * 0


OPS: dict[str, Callable[..., nnx.Module]] = {
    "none": lambda c, *, rngs: Zero(),
    "skip_connect": lambda c, *, rngs: Identity(),
    "identity": lambda c, *, rngs: Identity(),
    "conv1x1": lambda c, *, rngs: ReLUConvBN(c, c, 1, rngs=rngs),
    "conv3x3": lambda c, *, rngs: ReLUConvBN(c, c, 3, rngs=rngs),
    "conv5x5": lambda c, *, rngs: ReLUConvBN(c, c, 5, rngs=rngs),
    "avg_pool3x3": lambda c, *, rngs: Pool("avg"),
    "max_pool3x3": lambda c, *, rngs: Pool("max"),
    "sep_conv3x3": lambda c, *, rngs: SepConv(c, 3, rngs=rngs),
    "sep_conv5x5": lambda c, *, rngs: SepConv(c, 5, rngs=rngs),
    "dil_conv3x3": lambda c, *, rngs: DilConv(c, 3, dilation=2, rngs=rngs),
    "dil_conv5x5": lambda c, *, rngs: DilConv(c, 5, dilation=2, rngs=rngs),
}


def make_op(name: str, channels: int, *, rngs: nnx.Rngs) -> nnx.Module:
    """Builds the op `name` for `channels` channels."""
    if name not in OPS:
        raise KeyError(f"unknown op {name!r}; registered ops: {', '.join(sorted(OPS))}")
    return OPS[name](channels, rngs=rngs)
