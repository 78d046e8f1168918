"""Benchmark: cost of a conv's backward pass inside `lax.switch` on CPU, lax conv vs `nas.conv`.

Times (median ms, jitted) ``value_and_grad`` of ``sum(edge(relu(edge(x))))`` wrt x and both
kernels, x of shape (64, 32, 32, 32), 3x3 kernels:

* ``a_ref_noswitch``: plain `lax.conv_general_dilated`, no conditional;
* ``b_ref_switch``: each edge is a 3-way `lax.switch` (conv3x3, identity, avg pool 3x3) on a
  traced index (set to the conv branch), the conv being `lax.conv_general_dilated`;
* ``c_ours_switch``: the same switch with `nas.conv.conv2d`.

With ``--stride2`` it also times a stride-2 first edge (second edge stride 1), comparing
`conv2d`'s native stride-2 implementation with stride-1-then-subsample, both inside the switch.
With ``--window-ops`` it times ``value_and_grad`` of ``sum(sin(op(x)))`` for the slice-based
depthwise conv and pools against their `lax` counterparts (grouped conv, `reduce_window`),
outside and inside a switch. With ``--dw`` it times the weight gradient alone (3x3, stride 1)
on the three stages of the CIFAR-shaped network, the batch of 64 taken whole and in chunks.
With ``--library`` it times the convolution and its two gradients at the image sizes of the
CIFAR-shaped and digits networks, compiled with and without XLA-CPU's YNNPACK fusions
(`nas.xla_options`). With ``--batch-norm`` it times `nas.conv.batch_norm`, forward and
backward, with its statistics as `nas.conv.channel_mean` computes them (a vector-matrix
product on CPU) and as a reduction (`jnp.mean`).

Run: ``python experiments/bench_conv.py [--runs 10] [--stride2] [--window-ops] [--dw]
[--library] [--batch-norm]``; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp
from jax import lax

import nas.conv as nc
from nas.xla_options import YNN_FLAG

# Compiler options with XLA-CPU's default YNN fusions and without them (`nas.xla_options`).
_LIBRARIES = (("ynn", {}), ("xla", {YNN_FLAG: ""}))


def _ref_conv(x, w, stride=1):
    p = (w.shape[0] - 1) // 2
    return lax.conv_general_dilated(
        x, w, (stride, stride), ((p, p), (p, p)), dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


def _edge(conv, stride):
    """A switch edge: branch 0 conv3x3, 1 identity (subsampled at stride 2), 2 avg pool."""

    def edge(i, x, w):
        return lax.switch(
            i,
            [
                lambda x, w: conv(x, w, stride),
                lambda x, w: x[:, ::stride, ::stride, :],
                lambda x, w: nc.avg_pool(x, size=3, stride=stride),
            ],
            x,
            w,
        )

    return edge


def _make_step(conv, *, switch: bool, stride: int = 1):
    if switch:
        e1, e2 = _edge(conv, stride), _edge(conv, 1)

        def loss(x, w1, w2, i):
            return jnp.sum(e2(i, jax.nn.relu(e1(i, x, w1)), w2))
    else:

        def loss(x, w1, w2, i):
            return jnp.sum(conv(jax.nn.relu(conv(x, w1, stride)), w2, 1))

    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))


def _time(step, args, runs: int) -> float:
    jax.block_until_ready(step(*args))  # compile
    jax.block_until_ready(step(*args))  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        jax.block_until_ready(step(*args))
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _ours(x, w, stride):
    return nc.conv2d(x, w, stride=stride)


def _window_ops(x, runs: int) -> dict:
    c = x.shape[-1]
    wd = jax.random.normal(jax.random.PRNGKey(3), (3, 3, c), x.dtype)
    dn = ("NHWC", "HWIO", "NHWC")
    pads = ((0, 0), (1, 1), (1, 1), (0, 0))
    win = (1, 3, 3, 1)

    def lax_avg(x):  # static divisor: a reduce_window over ones gets constant-folded for ~20 s
        total = lax.reduce_window(x, 0.0, lax.add, win, (1,) * 4, pads)
        return total * jnp.asarray(nc._avg_scale(*x.shape[1:3], 3, 1), x.dtype)

    ops = {
        "dw_ours": lambda x, w: nc.depthwise_conv2d(x, w),
        "dw_lax": lambda x, w: lax.conv_general_dilated(
            x, w.reshape(3, 3, 1, c), (1, 1), "SAME", dimension_numbers=dn, feature_group_count=c
        ),
        "max_ours": lambda x, w: nc.max_pool(x),
        "max_lax": lambda x, w: lax.reduce_window(x, -jnp.inf, lax.max, win, (1,) * 4, pads),
        "avg_ours": lambda x, w: nc.avg_pool(x),
        "avg_lax": lambda x, w: lax_avg(x),
    }
    res = {}
    for name, op in ops.items():
        for where in ("noswitch", "switch"):
            if where == "switch":
                branches = [op, lambda x, w: x, lambda x, w: 2.0 * x]

                def loss(x, w, i, branches=branches):
                    return jnp.sum(jnp.sin(lax.switch(i, branches, x, w)))
            else:

                def loss(x, w, i, op=op):
                    return jnp.sum(jnp.sin(op(x, w)))

            step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
            res[f"win_{name}_{where}_ms"] = _time(step, (x, wd, jnp.int32(0)), runs)
    return res


def _weight_gradient(runs: int) -> dict:
    """Times `nas.conv`'s dW by chunk size on batches of 64 at 32x32x16, 16x16x32 and 8x8x64."""
    res = {}
    saved = nc._DW_CHUNK, nc._DW_CHUNK_MIN_PIXELS
    nc._DW_CHUNK_MIN_PIXELS = 0  # chunk every size, to show what chunking gives each
    try:
        for size, c in ((32, 16), (16, 32), (8, 64)):
            kx, ky = jax.random.split(jax.random.PRNGKey(size))
            x = jax.random.normal(kx, (64, size, size, c), jnp.float32)
            dy = jax.random.normal(ky, (64, size, size, c), jnp.float32)
            for chunk in (0, 16, 8, 4):
                nc._DW_CHUNK = chunk  # read when the step is traced
                step = jax.jit(lambda x, dy: nc._conv_bwd_w(x, dy, 3, 1, 1))
                res[f"dw_{size}x{size}x{c}_chunk{chunk or 64}_ms"] = _time(step, (x, dy), runs)
    finally:
        nc._DW_CHUNK, nc._DW_CHUNK_MIN_PIXELS = saved
    return res


def _library(runs: int) -> dict:
    """Times `nas.conv`'s convolution and both its gradients (3x3, stride 1, batch 64) at the
    image sizes of the CIFAR-shaped and digits networks, compiled with XLA-CPU's default YNN
    fusions and without them (`nas.xla_options`)."""
    res = {}
    for size, c in ((32, 16), (16, 32), (8, 64), (8, 16), (4, 32), (2, 64)):
        kx, kw = jax.random.split(jax.random.PRNGKey(size))
        x = jax.random.normal(kx, (64, size, size, c), jnp.float32)
        w = jax.random.normal(kw, (3, 3, c, c), jnp.float32) * 0.1
        cases = {
            "fwd": (lambda x, w: nc.conv2d(x, w), (x, w)),
            "dx": (lambda dy, w: nc._conv_bwd_x(dy, w, dy.shape, 1, 1, False), (x, w)),
            "dw": (lambda x, dy: nc._conv_bwd_w(x, dy, 3, 1, 1), (x, x)),
        }
        for name, (f, args) in cases.items():
            for label, options in _LIBRARIES:
                step = jax.jit(f, compiler_options=options)
                res[f"lib_{size}x{size}x{c}_{name}_{label}_ms"] = _time(step, args, runs)
    return res


def _batch_norm(runs: int) -> dict:
    """Times ``value_and_grad`` of ``sum(batch_norm(x) * t)`` wrt x (batch 64, t fixed) at the
    image sizes of the CIFAR-shaped and digits networks, the statistics by `nc.channel_mean`
    and by `jnp.mean`, compiled with and without XLA-CPU's YNN fusions."""
    res, product = {}, nc.channel_mean

    def reduction(x):
        return jnp.mean(x, axis=tuple(range(x.ndim - 1)), keepdims=True)

    try:
        for size, c in ((32, 16), (16, 32), (8, 64), (4, 32), (2, 64)):
            kx, kt = jax.random.split(jax.random.PRNGKey(size))
            x, t = (jax.random.normal(k, (64, size, size, c), jnp.float32) for k in (kx, kt))
            for label, mean in (("product", product), ("reduction", reduction)):
                nc.channel_mean = mean  # read when the step is traced
                for library, options in _LIBRARIES:
                    step = jax.jit(
                        jax.value_and_grad(lambda x, t: jnp.sum(nc.batch_norm(x) * t)),
                        compiler_options=options,
                    )
                    res[f"bn_{size}x{size}x{c}_{label}_{library}_ms"] = _time(step, (x, t), runs)
    finally:
        nc.channel_mean = product
    return res


def main(argv=None) -> dict:
    """Runs the benchmark, prints one line per case and a JSON summary as the last line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--stride2", action="store_true", help="also compare stride-2 variants")
    ap.add_argument("--window-ops", action="store_true", help="also time depthwise and pools")
    ap.add_argument("--dw", action="store_true", help="also time dW by batch chunk size")
    ap.add_argument(
        "--library", action="store_true", help="also time convolutions with and without YNNPACK"
    )
    ap.add_argument(
        "--batch-norm", action="store_true", help="also time batch-norm statistics both ways"
    )
    args = ap.parse_args(argv)

    kx, k1, k2 = jax.random.split(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(kx, (64, 32, 32, 32), jnp.float32)
    w1 = jax.random.normal(k1, (3, 3, 32, 32), jnp.float32) * 0.1
    w2 = jax.random.normal(k2, (3, 3, 32, 32), jnp.float32) * 0.1
    i = jnp.int32(0)  # traced index selecting the conv branch
    data = (x, w1, w2, i)

    res = {
        "device": jax.devices()[0].device_kind,
        "runs": args.runs,
        "a_ref_noswitch_ms": _time(_make_step(_ref_conv, switch=False), data, args.runs),
        "b_ref_switch_ms": _time(_make_step(_ref_conv, switch=True), data, args.runs),
        "c_ours_switch_ms": _time(_make_step(_ours, switch=True), data, args.runs),
    }
    if args.stride2:
        res["s2_ref_noswitch_ms"] = _time(
            _make_step(_ref_conv, switch=False, stride=2), data, args.runs
        )
        saved = nc._STRIDE2_IMPL
        try:
            for impl in ("native", "subsample"):
                nc._STRIDE2_IMPL = impl
                step = _make_step(_ours, switch=True, stride=2)
                res[f"s2_ours_{impl}_switch_ms"] = _time(step, data, args.runs)
        finally:
            nc._STRIDE2_IMPL = saved
    if args.window_ops:
        res.update(_window_ops(x, args.runs))
    if args.dw:
        res.update(_weight_gradient(args.runs))
    if args.library:
        res.update(_library(args.runs))
    if args.batch_norm:
        res.update(_batch_norm(args.runs))
    for key, val in res.items():
        if key.endswith("_ms"):
            print(f"{key:32s} {val:9.2f}")
    print(json.dumps(res))
    return res


if __name__ == "__main__":
    main()
