"""Every registered op: shape-preserving, zero-preserving (the canonical key relies on it),
and differentiable with correct gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.test_util import check_grads

from nas.conv import batch_norm, conv2d
from nas.ops import OPS, make_op, normal_init, relu_conv_bn


@pytest.mark.parametrize("name", sorted(OPS))
def test_op_keeps_shape_and_maps_zero_to_zero(name):
    op = make_op(name, 4, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (3, 6, 6, 4))
    assert op(x).shape == x.shape
    assert float(jnp.abs(op(jnp.zeros_like(x))).max()) == 0.0


@pytest.mark.parametrize("stride", [1, 2])
def test_relu_conv_bn_gradients(stride):
    x = jax.random.normal(jax.random.key(0), (4, 6, 6, 3))
    w = jax.random.normal(jax.random.key(1), (3, 3, 3, 5))

    def reference(x, w):
        return batch_norm(conv2d(jax.nn.relu(x), w, stride=stride))

    def loss(f):
        return jax.grad(lambda x, w: jnp.sum(jnp.sin(f(x, w))), (0, 1))(x, w)

    for ours, ref in zip(loss(lambda x, w: relu_conv_bn(x, w, stride)), loss(reference)):
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)
    check_grads(
        lambda x, w: relu_conv_bn(x, w, stride),
        (x, w),
        order=1,
        modes=["rev"],
        atol=5e-2,
        rtol=5e-2,
    )


def test_unknown_op_lists_the_registered_ones():
    with pytest.raises(KeyError, match="unknown op 'conv7x7'; registered ops: avg_pool3x3"):
        make_op("conv7x7", 4, rngs=nnx.Rngs(0))


@pytest.mark.parametrize("shape", [(1,), (3, 3, 16, 16), (1, 1, 5, 7), (3, 3, 64, 64)])
def test_normal_init_draws_what_a_direct_draw_does(shape):
    key, std = jax.random.key(7), jnp.sqrt(2.0 / 9)
    expected = np.asarray(jax.random.normal(key, shape) * std)
    drawn = normal_init(key, shape, std)
    assert drawn.shape == shape and drawn.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(drawn), expected)
    keys = jax.random.split(key, 3)  # traced keys (under a transform) take the direct draw
    batched = jax.vmap(lambda k: normal_init(k, shape, 0.1))(keys)
    np.testing.assert_array_equal(
        np.asarray(batched[1]), np.asarray(normal_init(keys[1], shape, 0.1))
    )
