"""Convolution, pooling and normalisation primitives that stay fast inside `lax.switch`.

The supernet picks each edge's op with `jax.lax.switch` on a traced index, so one compilation
serves every architecture. On CPU, XLA leaves the *backward* convolutions of a convolution that
sits inside a conditional in non-canonical layouts that miss the fast path and run tens of
times slower (35-60x measured). The functions here avoid that:

* `conv2d` is a `jax.custom_vjp` whose backward pass writes both gradients as ordinary
  NHWC/HWIO *forward* convolutions, which XLA keeps canonical.
* `depthwise_conv2d`, `max_pool` and `avg_pool` are k*k shifted slices combined elementwise, so
  they contain no convolution or `reduce_window` at all; their custom VJPs are window sums too.

Padding is symmetric, ``p = dilation * (k - 1) // 2`` on each side (PyTorch's ``padding=p``).
At stride 1 this is exactly ``'SAME'``; at stride 2 the output has ``ceil(H / 2)`` rows like
``'SAME'``, but windows are centred on input rows 0, 2, 4, ... (TF-style ``'SAME'`` centres
them on rows 1, 3, 5, ... when the padded extent is odd).
"""

from __future__ import annotations

import contextlib
import functools

import jax
import jax.numpy as jnp
from jax import lax

_DN = ("NHWC", "HWIO", "NHWC")


def _check_square_odd(k0: int, k1: int) -> int:
    if k0 != k1 or k0 % 2 != 1:
        raise ValueError(f"kernel must be square with odd size, got {k0}x{k1}")
    return k0


def _check_stride(stride: int) -> None:
    if stride not in (1, 2):
        raise ValueError(f"stride must be 1 or 2, got {stride}")


def _out_size(n: int, stride: int) -> int:
    return -(-n // stride)


# ---------------------------------------------------------------------------------------------
# Dense convolution with a canonical-layout backward pass.
# ---------------------------------------------------------------------------------------------


def _conv_fwd_raw(x, w, stride, dilation, matmul):
    if matmul:
        return _conv_as_matmul(x, w, dilation)
    k = w.shape[0]
    p = dilation * (k - 1) // 2
    return lax.conv_general_dilated(
        x,
        w,
        window_strides=(stride, stride),
        padding=((p, p), (p, p)),
        rhs_dilation=(dilation, dilation),
        dimension_numbers=_DN,
    )


def _conv_bwd_x(dy, w, x_shape, stride, dilation, matmul):
    """dx as a forward conv of (zero-upsampled) dy with the flipped, in/out-swapped kernel."""
    k = w.shape[0]
    p = dilation * (k - 1) // 2
    wt = jnp.swapaxes(w[::-1, ::-1], 2, 3)  # (k, k, C_out, C_in)
    if matmul:  # stride 1: dy is as large as x
        return _conv_as_matmul(dy, wt, dilation)
    # For stride s, lhs_dilation zero-upsamples dy to (Ho - 1) * s + 1 rows; still an NHWC/HWIO
    # conv that stays fast inside a switch (explicit zero insertion measured no faster).
    pads = tuple(
        (p, n - ((m - 1) * stride + 1) + p)
        for n, m in zip(x_shape[1:3], dy.shape[1:3], strict=True)
    )
    return lax.conv_general_dilated(
        dy,
        wt,
        window_strides=(1, 1),
        padding=pads,
        lhs_dilation=(stride, stride),
        rhs_dilation=(dilation, dilation),
        dimension_numbers=_DN,
    )


_MATMUL_CONVS = True  # see `_conv_as_matmul` and `plain_convolutions`


@contextlib.contextmanager
def plain_convolutions():
    """Traces every convolution as XLA's own while open: for cost analysis, whose FLOPs should
    count the network's multiply-adds, not those of `_conv_as_matmul` (which multiplies the
    zero padding too)."""
    global _MATMUL_CONVS
    before, _MATMUL_CONVS = _MATMUL_CONVS, False
    try:
        yield
    finally:
        _MATMUL_CONVS = before


def _as_matmul(x, k, dilation):
    """Whether to run a stride-1 conv as `_conv_as_matmul`: where a k x k kernel's reach spans
    the whole image (a 3x3 kernel on 2x2 images), on CPU (measured there only), outside
    `plain_convolutions`. Decided before the custom VJP, whose traces JAX caches by its
    arguments."""
    reach = dilation * (k - 1)
    covers = k > 1 and max(x.shape[1:3]) <= reach
    return covers and _MATMUL_CONVS and jax.default_backend() == "cpu"


def _conv_as_matmul(x, w, dilation):
    """A stride-1 conv as one matrix product of the k*k shifted images (im2col) with w.

    Why: XLA-CPU's convolution is slow where the kernel reaches across the whole image: on the
    2x2 images of the last digits stage, 64x2x2x64 with a 3x3 kernel, 2.0 ms against 0.6 ms
    for this product, and the digits child net's train step went from 48.7 to 36.4 ms
    (interleaved A/B over 4 architectures). On larger images the conv is faster (4x4x32:
    0.39 against 0.80 ms), so only kernels that cover the image take this path.
    """
    k = w.shape[0]
    n, h, wd, c = x.shape
    xp = _pad_hw(x, dilation * (k - 1) // 2)
    taps = [window for _, _, window in _windows(xp, k, dilation, 1, h, wd)]
    patches = jnp.concatenate(taps, axis=-1).reshape(n * h * wd, k * k * c)
    return (patches @ w.reshape(k * k * c, -1)).reshape(n, h, wd, -1)


# Examples per dW convolution on CPU (0: the whole batch at once), for images of at least
# `_DW_CHUNK_MIN_PIXELS` pixels; see `_conv_bwd_w`.
_DW_CHUNK = 8
_DW_CHUNK_MIN_PIXELS = 16 * 16


def _conv_bwd_w(x, dy, k, stride, dilation):
    """dW summed over chunks of `_DW_CHUNK` examples on CPU, each by `_conv_bwd_w_one`.

    Why: XLA-CPU runs the dW convolution (the batch as its contracted feature, a kernel as large
    as the image) about 3x faster on 8 examples at a time than on a batch of 64 at 32x32
    (``experiments/bench_conv.py --dw``); the CIFAR-shaped train step went from 158 to 103 ms.
    Smaller images gain little (8x8: 2.4 -> 2.3 ms) and pay for it in compile time (8 dW
    convolutions where there was one), so they and other backends take the batch whole.
    """
    n, chunk = x.shape[0], _DW_CHUNK
    small = x.shape[1] * x.shape[2] < _DW_CHUNK_MIN_PIXELS
    if not chunk or n <= chunk or small or jax.default_backend() != "cpu":
        return _conv_bwd_w_one(x, dy, k, stride, dilation)
    starts = range(0, n, chunk)
    parts = [
        _conv_bwd_w_one(x[s : s + chunk], dy[s : s + chunk], k, stride, dilation) for s in starts
    ]
    return functools.reduce(jnp.add, parts)


def _conv_bwd_w_one(x, dy, k, stride, dilation):
    """dW as a forward conv of x with dy, batch and feature axes swapped."""
    p = dilation * (k - 1) // 2
    # Rows/cols of the padded input the taps read; pad inside the conv (an explicit jnp.pad
    # followed by a VALID conv measured 2x slower on CPU), cropping x where that is negative.
    hi_h = (k - 1) * dilation + (dy.shape[1] - 1) * stride + 1 - x.shape[1] - p
    hi_w = (k - 1) * dilation + (dy.shape[2] - 1) * stride + 1 - x.shape[2] - p
    x = x[:, : x.shape[1] + min(hi_h, 0), : x.shape[2] + min(hi_w, 0), :]
    lhs = jnp.transpose(x, (3, 1, 2, 0))  # (C_in, H, W, N)
    rhs = jnp.transpose(dy, (1, 2, 0, 3))  # (Ho, Wo, N, C_out)
    dw = lax.conv_general_dilated(
        lhs,
        rhs,
        window_strides=(dilation, dilation),
        padding=((p, max(hi_h, 0)), (p, max(hi_w, 0))),
        rhs_dilation=(stride, stride),
        dimension_numbers=_DN,
    )  # (C_in, k, k, C_out)
    return jnp.transpose(dw, (1, 2, 0, 3))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _conv(x, w, stride, dilation, matmul):
    return _conv_fwd_raw(x, w, stride, dilation, matmul)


def _conv_fwd(x, w, stride, dilation, matmul):
    return _conv_fwd_raw(x, w, stride, dilation, matmul), (x, w)


def _conv_bwd(stride, dilation, matmul, res, dy):
    x, w = res
    dx = _conv_bwd_x(dy, w, x.shape, stride, dilation, matmul)
    dw = _conv_bwd_w(x, dy, w.shape[0], stride, dilation)
    return dx.astype(x.dtype), dw.astype(w.dtype)


_conv.defvjp(_conv_fwd, _conv_bwd)

# Which stride-2 implementation to use ("native" or "subsample"); see `conv2d`.
_STRIDE2_IMPL = "native"


def conv2d(x: jax.Array, w: jax.Array, *, stride: int = 1, dilation: int = 1) -> jax.Array:
    """2-D convolution whose gradients are canonical forward convolutions.

    Why: inside `lax.switch` XLA-CPU gives the autodiff backward convs of `lax.conv` slow
    layouts; here dx = conv(dy, flipped in/out-swapped kernel) and dW = conv(x^T, dy^T) with
    batch and feature axes swapped, both plain NHWC/HWIO forward convolutions.

    Stride 2 is native: the forward conv is strided, dx uses ``lhs_dilation=stride`` on dy,
    dW ``rhs_dilation=stride``. Inside a 3-way `lax.switch` (``experiments/bench_conv.py
    --stride2``, CPU) that measured about 2x faster than a stride-1 conv subsampled
    ``[:, ::2, ::2]`` (32 vs 66-72 ms per step), as fast as plain lax conv outside a switch.

    Args:
      x: input, (N, H, W, C_in).
      w: kernel, (k, k, C_in, C_out) with k odd.
      stride: 1 or 2.
      dilation: kernel dilation; padding is ``dilation * (k - 1) // 2`` on each side.

    Returns:
      (N, ceil(H / stride), ceil(W / stride), C_out).
    """
    _check_square_odd(w.shape[0], w.shape[1])
    _check_stride(stride)
    if x.shape[-1] != w.shape[2]:
        raise ValueError(f"input has {x.shape[-1]} channels, kernel expects {w.shape[2]}")
    matmul = _as_matmul(x, w.shape[0], dilation)
    if stride == 1:
        y = _conv(x, w, 1, dilation, matmul)
    elif _STRIDE2_IMPL == "native":
        y = _conv(x, w, stride, dilation, False)
    else:
        y = _conv(x, w, 1, dilation, matmul)[:, ::stride, ::stride, :]
    assert y.shape[1:3] == (_out_size(x.shape[1], stride), _out_size(x.shape[2], stride))
    return y


# ---------------------------------------------------------------------------------------------
# Depthwise convolution and pooling as shifted slices.
# ---------------------------------------------------------------------------------------------


def _pad_hw(x, p, value=0.0):
    return jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), constant_values=value)


def _windows(xp, k, dilation, stride, ho, wo):
    """Yields (a, b, window) for the k*k taps of padded `xp`, each window (N, ho, wo, C)."""
    for a in range(k):
        for b in range(k):
            r0, c0 = a * dilation, b * dilation
            rows = slice(r0, r0 + (ho - 1) * stride + 1, stride)
            cols = slice(c0, c0 + (wo - 1) * stride + 1, stride)
            yield a, b, xp[:, rows, cols, :]


def _spread(g, h, w, p, stride, fill=0):
    """Zero-inserts the cotangent `g` by `stride` and pads it by `p` (to h + 2p rows).

    Then the gradient wrt an (N, h, w, C) input is a stride-1 window sum: window (a', b') at
    offset dilation * (a', b') holds what each input pixel receives through tap
    (k-1-a', k-1-b').
    """
    lh, lw = (g.shape[1] - 1) * stride + 1, (g.shape[2] - 1) * stride + 1
    cfg = ((0, 0, 0), (p, h + p - lh, stride - 1), (p, w + p - lw, stride - 1), (0, 0, 0))
    return lax.pad(g, jnp.asarray(fill, g.dtype), cfg)


# The backward passes below are hand-written as window sums over a cotangent materialised with
# `optimization_barrier`: with plain autodiff, XLA-CPU fuses the cotangent's producer into each
# of the k*k transposed slices and recomputes it k*k times, 3-4x slower outside a switch.


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _depthwise(x, w, stride, dilation):
    k = w.shape[0]
    ho, wo = _out_size(x.shape[1], stride), _out_size(x.shape[2], stride)
    xp = _pad_hw(x, dilation * (k - 1) // 2)
    out = None
    for a, b, win in _windows(xp, k, dilation, stride, ho, wo):
        out = win * w[a, b] if out is None else out + win * w[a, b]
    return out


def _depthwise_fwd(x, w, stride, dilation):
    return _depthwise(x, w, stride, dilation), (x, w)


def _depthwise_bwd(stride, dilation, res, g):
    x, w = res
    k, (h, wd) = w.shape[0], x.shape[1:3]
    p = dilation * (k - 1) // 2
    g, gp = lax.optimization_barrier((g, _spread(g, h, wd, p, stride)))
    dx = None
    for a, b, win in _windows(gp, k, dilation, 1, h, wd):
        term = win * w[k - 1 - a, k - 1 - b]
        dx = term if dx is None else dx + term
    taps = _windows(_pad_hw(x, p), k, dilation, stride, g.shape[1], g.shape[2])
    dw = jnp.stack([jnp.sum(win * g, axis=(0, 1, 2)) for _, _, win in taps])
    return dx.astype(x.dtype), dw.reshape(w.shape).astype(w.dtype)


_depthwise.defvjp(_depthwise_fwd, _depthwise_bwd)


def depthwise_conv2d(
    x: jax.Array, w: jax.Array, *, stride: int = 1, dilation: int = 1
) -> jax.Array:
    """Depthwise 2-D convolution as k*k shifted multiply-adds.

    Why: no convolution op, so nothing for XLA to mis-layout inside `lax.switch` (a grouped
    `lax.conv` measured ~50x slower there); the custom VJP is the same kind of window sum.

    Args:
      x: input, (N, H, W, C).
      w: per-channel kernel, (k, k, C) with k odd.
      stride: 1 or 2 (windows are subsampled, as `conv2d`).
      dilation: kernel dilation; padding is ``dilation * (k - 1) // 2`` on each side.

    Returns:
      (N, ceil(H / stride), ceil(W / stride), C).
    """
    _check_square_odd(w.shape[0], w.shape[1])
    _check_stride(stride)
    if w.shape[2] != x.shape[-1]:
        raise ValueError(f"input has {x.shape[-1]} channels, kernel has {w.shape[2]}")
    return _depthwise(x, w, stride, dilation)


def _check_pool(size: int, stride: int) -> int:
    _check_square_odd(size, size)
    _check_stride(stride)
    return (size - 1) // 2


def _max_pool_fwd(x, size, stride, hw):
    del hw  # = x.shape[1:3], static; passed so the backward pass knows the input size
    ho, wo = _out_size(x.shape[1], stride), _out_size(x.shape[2], stride)
    xp = _pad_hw(x, (size - 1) // 2, -jnp.inf)
    idx_dtype = jnp.int8 if size * size < 128 else jnp.int32
    out = idx = None
    for a, b, win in _windows(xp, size, 1, stride, ho, wo):
        if out is None:
            out, idx = win, jnp.zeros(win.shape, idx_dtype)
        else:
            better = win > out  # strict: ties keep the first tap, as reduce_window's gradient
            out = jnp.where(better, win, out)
            idx = jnp.where(better, jnp.asarray(a * size + b, idx_dtype), idx)
    return out, idx


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def _max_pool(x, size, stride, hw):
    return _max_pool_fwd(x, size, stride, hw)[0]


def _max_pool_bwd(size, stride, hw, idx, g):
    (h, w), p = hw, (size - 1) // 2
    gp, ip = lax.optimization_barrier(
        (_spread(g, h, w, p, stride), _spread(idx, h, w, p, stride, fill=-1))
    )
    dx = None
    wins = zip(_windows(gp, size, 1, 1, h, w), _windows(ip, size, 1, 1, h, w), strict=True)
    for (a, b, gw), (_, _, iw) in wins:
        term = jnp.where(iw == (size - 1 - a) * size + (size - 1 - b), gw, 0)
        dx = term if dx is None else dx + term
    return (dx,)


_max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)


def max_pool(x: jax.Array, *, size: int = 3, stride: int = 1) -> jax.Array:
    """Max pooling over size x size windows as shifted slices, padded with -inf.

    Why: no `reduce_window`/select-and-scatter; the gradient goes to the first maximal tap of
    each window (as `reduce_window`'s), via the tap index saved in the forward pass.

    Args:
      x: input, (N, H, W, C).
      size: odd window size; padding is ``(size - 1) // 2`` on each side.
      stride: 1 or 2.

    Returns:
      (N, ceil(H / stride), ceil(W / stride), C).
    """
    _check_pool(size, stride)
    return _max_pool(x, size, stride, x.shape[1:3])


@functools.cache
def _avg_scale(h: int, w: int, size: int, stride: int) -> tuple[tuple[float, ...], ...]:
    """1 / (number of in-bounds positions) per output window, (Ho, Wo) as nested tuples.

    Plain Python, so that an exported model (`nas.export`) needs no NumPy.
    """
    p = (size - 1) // 2

    def counts(n):
        return [min(c + p, n - 1) - max(c - p, 0) + 1 for c in range(0, n, stride)]

    return tuple(tuple(1.0 / (a * b) for b in counts(w)) for a in counts(h))


_SLICED_POOLS = False  # see `sliced_pools`


@contextlib.contextmanager
def sliced_pools():
    """Traces `avg_pool`'s window sums as shifted slices while open, where nothing is gained
    from `reduce_window` (see `avg_pool`): inside a conditional's branch, whose input XLA
    materialises (`nas.switch`). The slices ran 2-4x faster on the 2-core CPU (64x32x32x16:
    0.69 against 3.0 ms; 64x8x8x16: 0.07 against 0.20 ms)."""
    global _SLICED_POOLS
    before, _SLICED_POOLS = _SLICED_POOLS, True
    try:
        yield
    finally:
        _SLICED_POOLS = before


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3, 4))
def _avg_pool(x, size, stride, hw, sliced):
    (h, w) = hw  # = x.shape[1:3], static; passed so the backward pass knows the input size
    p = (size - 1) // 2
    if sliced:
        ho, wo = _out_size(h, stride), _out_size(w, stride)
        total = _window_sum(_pad_hw(x, p), size, stride, ho, wo)
    else:
        pads = ((0, 0), (p, p), (p, p), (0, 0))
        total = lax.reduce_window(
            x, jnp.asarray(0, x.dtype), lax.add, (1, size, size, 1), (1, stride, stride, 1), pads
        )
    return total * jnp.asarray(_avg_scale(h, w, size, stride), x.dtype)[None, :, :, None]


def _avg_pool_fwd(x, size, stride, hw, sliced):
    return _avg_pool(x, size, stride, hw, sliced), None


def _avg_pool_bwd(size, stride, hw, sliced, _, g):
    (h, w), p = hw, (size - 1) // 2
    g = g * jnp.asarray(_avg_scale(h, w, size, stride), g.dtype)[None, :, :, None]
    gp = lax.optimization_barrier(_spread(g, h, w, p, stride))
    return (_window_sum(gp, size, 1, h, w),)


def _window_sum(xp, size, stride, ho, wo):
    """The sum of the size x size windows of padded `xp`, as shifted slices."""
    return functools.reduce(jnp.add, (win for _, _, win in _windows(xp, size, 1, stride, ho, wo)))


_avg_pool.defvjp(_avg_pool_fwd, _avg_pool_bwd)


def avg_pool(x: jax.Array, *, size: int = 3, stride: int = 1) -> jax.Array:
    """Average pooling, not counting padding (``count_include_pad=False``): a window sum
    (`lax.reduce_window`) times a static constant; the backward pass sums shifted slices.

    Why `reduce_window`, 2-4x slower on the CPU than a sum of shifted slices of the same
    windows: slices are elementwise, and XLA-CPU fuses them, with whatever computes their
    input, into every consumer. In a child net, where edges meet without a conditional between
    them, each dW convolution's transposed input then recomputed a chain of nodes through
    pools and skip connections, up to 40 inputs a kernel, cell after cell: 68 of the 97 ms of
    the digits child's train step on one core. XLA does not fuse a window reduction into its
    consumers, so the chain stops at each pool: the digits child net's step took 25.8-27.9
    against 40.5-42.4 ms, the 32x32x3 one's 96.2-100.7 against 103.4-103.6 ms (2 cores,
    nb201, 16 channels, side by side over 3 architectures).

    Args:
      x: input, (N, H, W, C).
      size: odd window size; padding is ``(size - 1) // 2`` on each side.
      stride: 1 or 2.

    Returns:
      (N, ceil(H / stride), ceil(W / stride), C).
    """
    _check_pool(size, stride)
    return _avg_pool(x, size, stride, x.shape[1:3], _SLICED_POOLS)


# ---------------------------------------------------------------------------------------------
# Normalisation.
# ---------------------------------------------------------------------------------------------


def batch_norm(x: jax.Array, *, eps: float = 1e-5) -> jax.Array:
    """Batch normalisation with batch statistics, no affine terms and no running averages.

    Why: DARTS-style supernets use affine-free BN; using batch statistics in train and eval
    alike keeps it a pure function (no state to thread through `lax.switch`). Its gradient is
    `batch_norm_grad`, from the output: on CPU the nb201 child net's train steps took 5.2% less
    than differentiating the statistics (32x32x3; 5.5% on digits), whose transposes are
    reductions (see `channel_mean`).

    Args:
      x: (N, H, W, C) or (N, F); normalised over every axis but the last.
      eps: added to the variance.

    Returns:
      x with per-channel zero mean and unit variance, same shape and dtype.
    """
    return _batch_norm(x, eps)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _batch_norm(x, eps):
    return batch_norm_fwd(x, eps=eps)[0]


def _batch_norm_fwd(x, eps):
    y, inv_std = batch_norm_fwd(x, eps=eps)
    return y, (y, inv_std)


def _batch_norm_bwd(eps, residuals, g):
    del eps  # in `inv_std` already
    return (batch_norm_grad(*residuals, g),)


_batch_norm.defvjp(_batch_norm_fwd, _batch_norm_bwd)


def batch_norm_fwd(x: jax.Array, *, eps: float = 1e-5) -> tuple[jax.Array, jax.Array]:
    """`batch_norm`'s output and its per-channel ``1 / std`` (shaped 1, ..., 1, C): all that
    `batch_norm_grad` needs."""
    xc = x - channel_mean(x)
    inv_std = lax.rsqrt(channel_mean(jnp.square(xc)) + eps)
    return xc * inv_std, inv_std


def batch_norm_grad(y: jax.Array, inv_std: jax.Array, g: jax.Array) -> jax.Array:
    """`batch_norm`'s input cotangent from its output `y`, ``1 / std`` and output cotangent
    `g`: ``(g - mean(g) - y mean(g y)) / std``, exact with the variance's `eps` included.

    It needs no activation but the output: inside the supernet's switch (`nas.switch`) that
    is the switch's own result.
    """
    return inv_std * (g - channel_mean(g) - y * channel_mean(g * y))


def channel_mean(x: jax.Array) -> jax.Array:
    """The mean over every axis but the last, shaped (1, ..., 1, C).

    Why: on CPU, a vector of ``1 / rows`` times x as a (rows, C) matrix. Without its YNN
    fusions (`nas.xla_options`, images of 16 pixels a side or more), XLA-CPU splits a
    reduction this large into `reduce-window`s that walk memory at the channels' stride: a
    batch norm's forward and backward pass on 64x32x32x16 took 4.78 ms that way and 2.94 ms
    this way, and the nb201 train step on 32x32x3 5.5% less for the child net and 2.8% for the
    supernet (interleaved A/B over 4 architectures). With YNN fusions, on digits' image sizes
    (8x8 and less), the product is as fast or faster (8x8x64: 0.63 against 0.69 ms), and the
    digits supernet's step was unchanged (``experiments/bench_conv.py --batch-norm``).
    """
    keep = (1,) * (x.ndim - 1) + (x.shape[-1],)
    if jax.default_backend() != "cpu":
        return jnp.mean(x, axis=tuple(range(x.ndim - 1))).reshape(keep)
    rows = x.reshape(-1, x.shape[-1])
    weights = jnp.full((rows.shape[0],), 1 / rows.shape[0], x.dtype)
    return jnp.dot(weights, rows, precision=lax.Precision.HIGHEST).reshape(keep)
