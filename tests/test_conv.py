"""Tests for `nas.conv`: values and gradients against `lax` references, also inside a switch.

Compiling is what costs time on CPU, so each family of cases is computed in one jit by a
module-scoped fixture and the parametrised tests only compare the results.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.test_util import check_grads

import nas.conv as nc
from nas.conv import (
    avg_pool,
    batch_norm,
    batch_norm_fwd,
    batch_norm_grad,
    channel_mean,
    conv2d,
    depthwise_conv2d,
    max_pool,
)

DN = ("NHWC", "HWIO", "NHWC")
TOL = dict(rtol=1e-4, atol=1e-4)
SHAPE = (2, 9, 8, 3)  # odd height, even width: both stride-2 cases

CONV_CASES = list(itertools.product([1, 3, 5], [1, 2], [1, 2]))  # (k, dilation, stride)
DEPTHWISE_CASES = [(3, 1, 1), (3, 2, 2), (5, 1, 2), (5, 2, 1)]  # (k, dilation, stride)
# (kind, size, stride); "avg_sliced": `avg_pool` traced under `sliced_pools`.
POOL_CASES = list(itertools.product(["max", "avg", "avg_sliced"], [3, 5], [1, 2]))


@pytest.fixture
def x64():
    """Enables float64 for one test and restores the previous setting."""
    old = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", old)


def _rand(seed, shape, dtype=jnp.float32):
    return jax.random.normal(jax.random.PRNGKey(seed), shape, dtype)


def _ref_conv(x, w, stride, dilation, groups=1):
    """lax conv: 'SAME' at stride 1; symmetric padding p at stride 2 (nas.conv's convention)."""
    k = w.shape[0]
    p = dilation * (k - 1) // 2
    padding = "SAME" if stride == 1 else ((p, p), (p, p))
    return lax.conv_general_dilated(
        x,
        w,
        (stride, stride),
        padding,
        rhs_dilation=(dilation, dilation),
        dimension_numbers=DN,
        feature_group_count=groups,
    )


def _ref_pool(x, kind, size, stride):
    p = (size - 1) // 2
    pads = ((0, 0), (p, p), (p, p), (0, 0))
    win, strides = (1, size, size, 1), (1, stride, stride, 1)
    if kind == "max":
        return lax.reduce_window(x, -jnp.inf, lax.max, win, strides, pads)
    # avg, avg_sliced
    total = lax.reduce_window(x, 0.0, lax.add, win, strides, pads)
    count = lax.reduce_window(jnp.ones_like(x), 0.0, lax.add, win, strides, pads)
    return total / count  # count_include_pad=False


def _grads(f, args):
    """Value of f(*args) and gradients of a fixed pseudo-random linear functional of it."""
    out = f(*args)
    # sin of a ramp, not jax.random: threefry inside every jitted case dominates compile time.
    g = jnp.sin(jnp.arange(out.size, dtype=out.dtype) * 1.618 + 0.5).reshape(out.shape)
    return out, jax.grad(lambda *a: jnp.sum(f(*a) * g), argnums=tuple(range(len(args))))(*args)


def _assert_same(got, want):
    out, grads = got
    ref_out, ref_grads = want
    assert out.shape == ref_out.shape
    np.testing.assert_allclose(out, ref_out, **TOL)
    for a, b in zip(grads, ref_grads, strict=True):
        np.testing.assert_allclose(a, b, **TOL)


@pytest.fixture(scope="module")
def conv_results():
    x = _rand(0, SHAPE)
    ws = {k: _rand(1, (k, k, SHAPE[-1], 4)) for k in (1, 3, 5)}

    @jax.jit
    def run(x, ws):
        out = {}
        for k, d, s in CONV_CASES:
            ours = _grads(lambda x, w, d=d, s=s: conv2d(x, w, stride=s, dilation=d), (x, ws[k]))
            ref = _grads(lambda x, w, d=d, s=s: _ref_conv(x, w, s, d), (x, ws[k]))
            out[(k, d, s)] = ours, ref
        return out

    return run(x, ws)


@pytest.mark.parametrize("k,dilation,stride", CONV_CASES)
def test_conv2d_matches_lax(conv_results, k, dilation, stride):
    got, want = conv_results[(k, dilation, stride)]
    _assert_same(got, want)
    # Output size is that of 'SAME' padding at any stride.
    same = jax.eval_shape(
        lambda x, w: lax.conv_general_dilated(
            x, w, (stride, stride), "SAME", rhs_dilation=(dilation, dilation), dimension_numbers=DN
        ),
        jax.ShapeDtypeStruct(SHAPE, jnp.float32),
        jax.ShapeDtypeStruct((k, k, SHAPE[-1], 4), jnp.float32),
    )
    assert got[0].shape == same.shape


@pytest.mark.parametrize("stride,dilation", [(1, 1), (2, 1), (1, 2), (2, 2)])
def test_conv2d_check_grads(x64, stride, dilation):
    x, w = _rand(0, (2, 5, 6, 2), jnp.float64), _rand(1, (3, 3, 2, 3), jnp.float64)
    check_grads(
        lambda x, w: conv2d(x, w, stride=stride, dilation=dilation), (x, w), order=1, modes=["rev"]
    )


@pytest.mark.parametrize("stride", [1, 2])
def test_conv2d_weight_gradient_over_batch_chunks_matches_lax(stride):
    n = 2 * nc._DW_CHUNK + 3  # two whole chunks and a short one
    assert 17 * 16 >= nc._DW_CHUNK_MIN_PIXELS  # images large enough to be chunked
    x, w = _rand(0, (n, 17, 16, 3)), _rand(1, (3, 3, 3, 4))
    _, (_, got) = jax.jit(lambda x, w: _grads(lambda x, w: conv2d(x, w, stride=stride), (x, w)))(
        x, w
    )
    _, (_, want) = _grads(lambda x, w: _ref_conv(x, w, stride, 1), (x, w))
    # Sums of n * 272 products: float32 rounding scales with the magnitude.
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


@pytest.mark.parametrize("size,k,dilation", [(2, 3, 1), (1, 3, 1), (4, 3, 2), (3, 5, 1)])
def test_conv2d_on_images_its_kernel_covers_is_a_matmul_that_matches_lax(size, k, dilation):
    x, w = _rand(0, (3, size, size, 5)), _rand(1, (k, k, 5, 4))

    def ours(x, w):
        return conv2d(x, w, dilation=dilation)

    def convolutions(f):  # a new function each time: jit caches traces by function
        return jax.jit(lambda x, w: f(x, w)).lower(x, w).as_text().count("stablehlo.convolution")

    assert convolutions(ours) == 0
    with nc.plain_convolutions():  # what cost analysis traces
        assert convolutions(ours) == 1
    got = jax.jit(lambda x, w: _grads(ours, (x, w)))(x, w)
    _assert_same(got, _grads(lambda x, w: _ref_conv(x, w, 1, dilation), (x, w)))


@pytest.fixture(scope="module")
def depthwise_results():
    c = SHAPE[-1]
    x = _rand(2, SHAPE)
    ws = {k: _rand(3, (k, k, c)) for k in (3, 5)}

    @jax.jit
    def run(x, ws):
        out = {}
        for k, d, s in DEPTHWISE_CASES:

            def ours(x, w, d=d, s=s):
                return depthwise_conv2d(x, w, stride=s, dilation=d)

            def ref(x, w, k=k, d=d, s=s):
                return _ref_conv(x, w.reshape(k, k, 1, c), s, d, groups=c)

            out[(k, d, s)] = _grads(ours, (x, ws[k])), _grads(ref, (x, ws[k]))
        return out

    return run(x, ws)


@pytest.mark.parametrize("k,dilation,stride", DEPTHWISE_CASES)
def test_depthwise_matches_grouped_lax_conv(depthwise_results, k, dilation, stride):
    _assert_same(*depthwise_results[(k, dilation, stride)])


@pytest.fixture(scope="module")
def pool_results():
    def sliced_avg_pool(x, **kw):
        with nc.sliced_pools():
            return avg_pool(x, **kw)

    fns = {"max": max_pool, "avg": avg_pool, "avg_sliced": sliced_avg_pool}

    @jax.jit
    def run(x):
        out = {}
        for kind, size, s in POOL_CASES:
            ours = _grads(
                lambda x, kind=kind, size=size, s=s: fns[kind](x, size=size, stride=s), (x,)
            )
            ref = _grads(lambda x, kind=kind, size=size, s=s: _ref_pool(x, kind, size, s), (x,))
            out[(kind, size, s)] = ours, ref
        return out

    return run(_rand(4, SHAPE))


@pytest.mark.parametrize("kind,size,stride", POOL_CASES)
def test_pools_match_reduce_window(pool_results, kind, size, stride):
    _assert_same(*pool_results[(kind, size, stride)])


def test_max_pool_ties_match_reduce_window():
    x = jnp.round(_rand(10, (2, 7, 6, 2)))  # small integers: many tied maxima per window

    @jax.jit
    def run(x):
        return [
            (
                _grads(lambda x, s=s: max_pool(x, stride=s), (x,)),
                _grads(lambda x, s=s: _ref_pool(x, "max", 3, s), (x,)),
            )
            for s in (1, 2)
        ]

    for got, want in run(x):
        _assert_same(got, want)


@pytest.mark.parametrize("stride", [1, 2])
def test_window_ops_check_grads(x64, stride):
    x, w = _rand(0, (2, 5, 6, 2), jnp.float64), _rand(1, (3, 3, 2), jnp.float64)
    opts = dict(order=1, modes=["rev"])
    check_grads(lambda x, w: depthwise_conv2d(x, w, stride=stride, dilation=2), (x, w), **opts)
    check_grads(lambda x: avg_pool(x, stride=stride), (x,), **opts)
    with nc.sliced_pools():
        check_grads(lambda x: avg_pool(x, stride=stride), (x,), **opts)
    check_grads(lambda x: max_pool(x, stride=stride), (x,), **opts)


def test_avg_pool_excludes_padding():
    out = avg_pool(jnp.ones((1, 4, 5, 2)), size=3, stride=2)
    np.testing.assert_allclose(out, 1.0, rtol=1e-6)


def test_avg_pool_is_a_window_reduction_but_in_sliced_pools():
    def traced(x):  # a new function each time: JAX caches a function's trace
        return str(jax.make_jaxpr(lambda x: avg_pool(x))(x))

    x = jnp.ones((1, 6, 6, 2))
    assert "reduce_window" in traced(x)
    with nc.sliced_pools():
        assert "reduce_window" not in traced(x)
    assert "reduce_window" in traced(x)  # closed again


@pytest.mark.parametrize("shape", [(8, 5, 6, 3), (16, 7)])
def test_batch_norm_normalises_per_channel(shape):
    scale = jnp.arange(1.0, shape[-1] + 1.0)
    x = _rand(5, shape) * scale * 3.0 + scale * 10.0
    y = batch_norm(x)
    axes = tuple(range(len(shape) - 1))
    assert y.shape == x.shape and y.dtype == x.dtype
    np.testing.assert_allclose(jnp.mean(y, axis=axes), 0.0, atol=1e-5)
    np.testing.assert_allclose(jnp.var(y, axis=axes), 1.0, atol=1e-3)


@pytest.mark.parametrize("shape", [(64, 32, 32, 4), (16, 7)])
def test_channel_mean_is_the_mean_over_every_axis_but_the_last(shape):
    x = _rand(11, shape) * 3.0 + jnp.arange(shape[-1])
    mean = channel_mean(x)
    assert mean.shape == (1,) * (len(shape) - 1) + shape[-1:]
    expected = np.mean(np.asarray(x, np.float64), axis=tuple(range(len(shape) - 1)))
    np.testing.assert_allclose(mean.ravel(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(8, 5, 6, 3), (16, 7)])
def test_batch_norm_grad_from_its_output_is_the_gradient_of_batch_norm(shape):
    x = _rand(9, shape) * 2.0 + 1.0
    g = _rand(10, shape)
    y, inv_std = batch_norm_fwd(x)
    assert inv_std.shape == (1,) * (len(shape) - 1) + shape[-1:]
    np.testing.assert_array_equal(y, batch_norm(x))
    (expected,) = jax.vjp(batch_norm, x)[1](g)
    np.testing.assert_allclose(batch_norm_grad(y, inv_std, g), expected, rtol=1e-4, atol=1e-5)


def _branches(stride):
    return [
        lambda x, w, wd: conv2d(x, w, stride=stride, dilation=2) * 2.0,
        lambda x, w, wd: depthwise_conv2d(x, wd, stride=stride, dilation=2),
        lambda x, w, wd: max_pool(x, stride=stride),
        lambda x, w, wd: avg_pool(x, stride=stride),
        lambda x, w, wd: batch_norm(conv2d(jax.nn.relu(x), w, stride=stride)),
    ]


@pytest.fixture(scope="module")
def switch_results():
    c = 3
    args = _rand(6, (2, 8, 7, c)), _rand(7, (3, 3, c, c)), _rand(8, (3, 3, c))

    @jax.jit
    def run(args):
        out = {}
        for stride in (1, 2):
            branches = _branches(stride)

            def switched(i, *a, branches=branches):
                return lax.switch(i, branches, *a)

            # Every branch through one switch on a traced index (lax.map keeps i traced).
            idx = jnp.arange(len(branches), dtype=jnp.int32)
            inside = lax.map(lambda i, sw=switched: _grads(lambda *a: sw(i, *a), args), idx)
            outside = [_grads(b, args) for b in branches]
            out[stride] = inside, outside
        return out

    return run(args)


@pytest.mark.parametrize("stride", [1, 2])
def test_ops_inside_switch_match_outside(switch_results, stride):
    (out, grads), outside = switch_results[stride]
    for i, want in enumerate(outside):
        _assert_same((out[i], tuple(g[i] for g in grads)), want)


def test_invalid_arguments_raise():
    x = jnp.zeros((1, 4, 4, 2))
    with pytest.raises(ValueError):
        conv2d(x, jnp.zeros((2, 2, 2, 2)))
    with pytest.raises(ValueError):
        conv2d(x, jnp.zeros((3, 3, 2, 2)), stride=3)
    with pytest.raises(ValueError):
        conv2d(x, jnp.zeros((3, 3, 5, 2)))
    with pytest.raises(ValueError):
        depthwise_conv2d(x, jnp.zeros((3, 3, 3)))
    with pytest.raises(ValueError):
        max_pool(x, size=2)
