"""Benchmark: cost of a conv's backward pass inside `lax.switch` on CPU, lax conv vs `nas.conv`.

Times (median ms, jitted) ``value_and_grad`` of ``sum(edge(relu(edge(x))))`` wrt x and both
kernels, x of shape (64, 32, 32, 32), 3x3 kernels:

* ``a_ref_noswitch``: plain `lax.conv_general_dilated`, no conditional;
* ``b_ref_switch``: each edge is a 3-way `lax.switch` (conv3x3, identity, avg pool 3x3) on a
  traced index (set to the conv branch), the conv being `lax.conv_general_dilated`;
* ``c_ours_switch``: the same switch with `nas.conv.conv2d`.

With ``--stride2`` it also times a stride-2 first edge (second edge stride 1), comparing
`conv2d`'s native stride-2 implementation with stride-1-then-subsample, both inside the switch.

Run: ``python experiments/bench_conv.py [--runs 10] [--stride2]``; the last line is JSON.
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


def main(argv=None) -> dict:
    """Runs the benchmark, prints one line per case and a JSON summary as the last line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--stride2", action="store_true", help="also compare stride-2 variants")
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
    for key, val in res.items():
        if key.endswith("_ms"):
            print(f"{key:32s} {val:9.2f}")
    print(json.dumps(res))
    return res


if __name__ == "__main__":
    main()
