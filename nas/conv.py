"""Convolution, pooling and normalisation primitives that stay fast inside `lax.switch`.

The supernet picks each edge's op with `jax.lax.switch` on a traced index, so one compilation
serves every architecture. On CPU, XLA leaves the *backward* convolutions of a convolution that
sits inside a conditional in non-canonical layouts that miss the fast (Eigen/oneDNN) path and
run 35-40x slower. The functions here avoid that:

* `conv2d` is a `jax.custom_vjp` whose backward pass writes both gradients as ordinary
  NHWC/HWIO *forward* convolutions, which XLA keeps canonical.
* `depthwise_conv2d`, `max_pool` and `avg_pool` are k*k shifted slices combined elementwise, so
  they contain no convolution or `reduce_window` at all.

Padding is symmetric, ``p = dilation * (k - 1) // 2`` on each side (PyTorch's ``padding=p``).
At stride 1 this is exactly ``'SAME'``; at stride 2 the output has ``ceil(H / 2)`` rows like
``'SAME'``, but windows are centred on input rows 0, 2, 4, ... (TF-style ``'SAME'`` centres
them on rows 1, 3, 5, ... when the padded extent is odd).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
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


def _conv_fwd_raw(x, w, stride, dilation):
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


def _conv_bwd_x(dy, w, x_shape, stride, dilation):
    """dx as a forward conv of (zero-upsampled) dy with the flipped, in/out-swapped kernel."""
    k = w.shape[0]
    p = dilation * (k - 1) // 2
    wt = jnp.swapaxes(w[::-1, ::-1], 2, 3)  # (k, k, C_out, C_in)
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


def _conv_bwd_w(x, dy, k, stride, dilation):
    """dW as a forward conv of x with dy, batch and feature axes swapped."""
    p = dilation * (k - 1) // 2
    # Rows/cols of the padded input the taps read; pad inside the conv (an explicit jnp.pad
    # followed by a VALID conv measured 2x slower on CPU), cropping x where that is negative.
    hi_h = (k - 1) * dilation + (dy.shape[1] - 1) * stride + 1 - x.shape[1] - p
    hi_w = (k - 1) * dilation + (dy.shape[2] - 1) * stride + 1 - x.shape[2] - p
    x = x[:, : x.shape[1] + min(hi_h, 0), : x.shape[2] + min(hi_w, 0), :]
    lhs = jnp.transpose(x, (3, 1, 2, 0))  # (C_in, H, W, N): C_in as batch, N as feature
    rhs = jnp.transpose(dy, (1, 2, 0, 3))  # (Ho, Wo, N, C_out): dy as the kernel
    dw = lax.conv_general_dilated(
        lhs,
        rhs,
        window_strides=(dilation, dilation),
        padding=((p, max(hi_h, 0)), (p, max(hi_w, 0))),
        rhs_dilation=(stride, stride),
        dimension_numbers=_DN,
    )  # (C_in, k, k, C_out)
    return jnp.transpose(dw, (1, 2, 0, 3))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv(x, w, stride, dilation):
    return _conv_fwd_raw(x, w, stride, dilation)


def _conv_fwd(x, w, stride, dilation):
    return _conv_fwd_raw(x, w, stride, dilation), (x, w)


def _conv_bwd(stride, dilation, res, dy):
    x, w = res
    dx = _conv_bwd_x(dy, w, x.shape, stride, dilation)
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
    --stride2``, CPU) that measured 2.2x faster than a stride-1 conv subsampled
    ``[:, ::2, ::2]`` (32 vs 72 ms per step), and as fast as plain lax conv outside a switch.

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
    if stride == 1 or _STRIDE2_IMPL == "native":
        y = _conv(x, w, stride, dilation)
    else:
        y = _conv(x, w, 1, dilation)[:, ::stride, ::stride, :]
    assert y.shape[1:3] == (_out_size(x.shape[1], stride), _out_size(x.shape[2], stride))
    return y


# ---------------------------------------------------------------------------------------------
# Depthwise convolution and pooling as shifted slices.
# ---------------------------------------------------------------------------------------------


def _shifted_slices(xp, k, dilation, stride, ho, wo):
    """Yields the k*k strided windows of padded `xp`, tap by tap (row-major)."""
    for a in range(k):
        for b in range(k):
            r0, c0 = a * dilation, b * dilation
            yield (
                a,
                b,
                xp[
                    :,
                    r0 : r0 + (ho - 1) * stride + 1 : stride,
                    c0 : c0 + (wo - 1) * stride + 1 : stride,
                    :,
                ],
            )


def depthwise_conv2d(
    x: jax.Array, w: jax.Array, *, stride: int = 1, dilation: int = 1
) -> jax.Array:
    """Depthwise 2-D convolution as k*k shifted multiply-adds.

    Why: no convolution op, so nothing for XLA to mis-layout inside `lax.switch`; autodiff of
    slices and multiplies gives pads and reductions, which are fast everywhere.

    Args:
      x: input, (N, H, W, C).
      w: per-channel kernel, (k, k, C) with k odd.
      stride: 1 or 2 (windows are subsampled, as `conv2d`).
      dilation: kernel dilation; padding is ``dilation * (k - 1) // 2`` on each side.

    Returns:
      (N, ceil(H / stride), ceil(W / stride), C).
    """
    k = _check_square_odd(w.shape[0], w.shape[1])
    _check_stride(stride)
    if w.shape[2] != x.shape[-1]:
        raise ValueError(f"input has {x.shape[-1]} channels, kernel has {w.shape[2]}")
    p = dilation * (k - 1) // 2
    ho, wo = _out_size(x.shape[1], stride), _out_size(x.shape[2], stride)
    xp = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    out = None
    for a, b, s in _shifted_slices(xp, k, dilation, stride, ho, wo):
        term = s * w[a, b]
        out = term if out is None else out + term
    return out


def _check_pool(size: int, stride: int) -> int:
    _check_square_odd(size, size)
    _check_stride(stride)
    return (size - 1) // 2


def max_pool(x: jax.Array, *, size: int = 3, stride: int = 1) -> jax.Array:
    """Max pooling over size x size windows as shifted slices, padded with -inf.

    Why: no `reduce_window` (whose gradient, select-and-scatter, is slow inside a switch).

    Args:
      x: input, (N, H, W, C).
      size: odd window size; padding is ``(size - 1) // 2`` on each side.
      stride: 1 or 2.

    Returns:
      (N, ceil(H / stride), ceil(W / stride), C).
    """
    p = _check_pool(size, stride)
    ho, wo = _out_size(x.shape[1], stride), _out_size(x.shape[2], stride)
    xp = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), constant_values=-jnp.inf)
    out = None
    for _, _, s in _shifted_slices(xp, size, 1, stride, ho, wo):
        out = s if out is None else jnp.maximum(out, s)
    return out


@functools.cache
def _avg_counts(h: int, w: int, size: int, stride: int) -> np.ndarray:
    """Reciprocal of the number of in-bounds positions per output window, (1, Ho, Wo, 1)."""
    p = (size - 1) // 2

    def counts(n):
        centres = np.arange(0, n, stride)
        lo = np.maximum(centres - p, 0)
        hi = np.minimum(centres + p, n - 1)
        return hi - lo + 1

    c = np.outer(counts(h), counts(w)).astype(np.float64)
    return (1.0 / c)[None, :, :, None]


def avg_pool(x: jax.Array, *, size: int = 3, stride: int = 1) -> jax.Array:
    """Average pooling as shifted slices, not counting padding (``count_include_pad=False``).

    Why: no `reduce_window`; the divisor is a static NumPy constant.

    Args:
      x: input, (N, H, W, C).
      size: odd window size; padding is ``(size - 1) // 2`` on each side.
      stride: 1 or 2.

    Returns:
      (N, ceil(H / stride), ceil(W / stride), C).
    """
    p = _check_pool(size, stride)
    ho, wo = _out_size(x.shape[1], stride), _out_size(x.shape[2], stride)
    xp = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    out = None
    for _, _, s in _shifted_slices(xp, size, 1, stride, ho, wo):
        out = s if out is None else out + s
    inv = _avg_counts(x.shape[1], x.shape[2], size, stride)
    return out * jnp.asarray(inv, dtype=x.dtype)


# ---------------------------------------------------------------------------------------------
# Normalisation.
# ---------------------------------------------------------------------------------------------


def batch_norm(x: jax.Array, *, eps: float = 1e-5) -> jax.Array:
    """Batch normalisation with batch statistics, no affine terms and no running averages.

    Why: DARTS-style supernets use affine-free BN; using batch statistics in train and eval
    alike keeps it a pure function (no state to thread through `lax.switch`).

    Args:
      x: (N, H, W, C) or (N, F); normalised over every axis but the last.
      eps: added to the variance.

    Returns:
      x with per-channel zero mean and unit variance, same shape and dtype.
    """
    axes = tuple(range(x.ndim - 1))
    mean = jnp.mean(x, axis=axes, keepdims=True)
    xc = x - mean
    var = jnp.mean(jnp.square(xc), axis=axes, keepdims=True)
    return xc * lax.rsqrt(var + eps)
