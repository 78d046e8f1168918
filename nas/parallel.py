"""Data parallelism over a host's local devices: each device trains on its share of a batch.

`Trainer` (``TrainConfig.devices``) splits every training batch into equal shares, one per
device; each device runs the step on its share, normalising with its share's batch statistics
(as PyTorch's DistributedDataParallel does without SyncBatchNorm), and the devices average
their gradients and losses in one all-reduce, then apply the same update to their copies of
the parameters. So ``devices=2`` trains as batch norm over half-batches would, not as one
device on the whole batch.

Why on a CPU: XLA-CPU's threads find little to run side by side in a small network's step.
nb201 on digits (16 channels, 5 cells a stage, batch 64, 2-core CPU) stepped in 41.7 ms on one
core and 41.7 ms on two; two CPU devices of 32 examples each took the supernet step from 39.6 to
30.9 ms and the child net's from 30.5 to 20.4 (on 32x32x3: 120.7 to 101.5, 108.8 to 86.4 ms).
The CPU's devices must exist before JAX starts its backend: `use_cpu_devices`.

One all-reduce of every gradient, flattened together: XLA-CPU's in-process all-reduce costs
tens of microseconds each, and one per parameter (189 in that supernet) made its step 46.7 ms.

The split program compiles slower: that supernet's train step in 21-22 s against 13 s (XLA's
SPMD partitioner took 2 s, code generation most of the rest), the same with scanned cells
(`Network`'s ``scan_cells``) 5.25 against 4.70 s on 32x32x3.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.flatten_util import ravel_pytree
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

AXIS = "data"


def use_cpu_devices(n: int) -> None:
    """Has JAX's CPU backend make `n` devices, for ``devices=n`` on a CPU (nothing for one).

    Call it before JAX runs anything in the process; it does not change the devices of other
    backends (a GPU's)."""
    if n <= 1:
        return
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError as err:  # the backend has started
        if len(jax.devices("cpu")) < n:
            raise RuntimeError(
                f"devices={n}: JAX's CPU backend has already started with "
                f"{len(jax.devices('cpu'))} device(s); make the devices before JAX runs "
                f"anything (nas.parallel.use_cpu_devices({n}) first thing, or nas search "
                f"--devices {n})"
            ) from err


def device_mesh(n: int) -> Mesh:
    """A one-axis mesh over the first `n` devices of JAX's default backend."""
    devices = jax.devices()
    if n > len(devices):
        hint = (
            f"; call nas.parallel.use_cpu_devices({n}) first"
            if devices[0].platform == "cpu"
            else ""
        )
        raise ValueError(
            f"devices={n}, but JAX sees {len(devices)} {devices[0].platform} device(s){hint}"
        )
    return Mesh(np.asarray(devices[:n]), (AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    """A copy on every device of `mesh`."""
    return NamedSharding(mesh, P())


def split(mesh: Mesh, axis: int = 0) -> NamedSharding:
    """Equal shares of the (batch) axis `axis`, one per device of `mesh`."""
    return NamedSharding(mesh, _split_spec(axis))


def _split_spec(axis: int) -> P:
    return P(*[None] * axis, AXIS)


def mean_over_devices(tree):
    """The mean of `tree` over the devices, in one all-reduce (inside `data_parallel`)."""
    flat, unravel = ravel_pytree(tree)
    return unravel(jax.lax.pmean(flat, AXIS))


def data_parallel(step, mesh: Mesh, n_replicated: int, n_split: int, split_axis: int = 0):
    """`step` run on every device of `mesh`: its first `n_replicated` arguments the same on
    each (and its results), the next `n_split` split along their axis `split_axis` (the batch
    axis), any others (a traced architecture) the same on each."""

    def specs(*args):
        return (
            (P(),) * n_replicated
            + (_split_spec(split_axis),) * n_split
            + (P(),) * (len(args) - n_replicated - n_split)
        )

    def run(*args):
        return jax.shard_map(
            step, mesh=mesh, in_specs=specs(*args), out_specs=P(), check_vma=False
        )(*args)

    return run
