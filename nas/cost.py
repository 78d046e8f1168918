"""What a network costs: its parameter count and the floating-point operations of one forward
pass, as XLA counts them (a multiply-add is 2)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from nas.conv import plain_convolutions


def parameters(net: nnx.Module) -> int:
    """The number of trainable parameters of `net`."""
    return int(sum(leaf.size for leaf in jax.tree.leaves(nnx.state(net, nnx.Param))))


def flops(net: nnx.Module, input_shape) -> int:
    """The floating-point operations of `net` on one example of `input_shape` (H, W, C)."""
    graphdef, state = nnx.split(net)
    forward = jax.jit(lambda state, x: nnx.merge(graphdef, state)(x))
    with plain_convolutions():
        compiled = forward.lower(state, jnp.zeros((1, *input_shape), jnp.float32)).compile()
    analysis = compiled.cost_analysis()
    if isinstance(analysis, list | tuple):  # one entry per device on older JAX versions
        analysis = analysis[0]
    return int(analysis["flops"])
