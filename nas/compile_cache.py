"""JAX's persistent compilation cache: where a search keeps the programs XLA compiled for it.

A search compiles its supernet's train and eval steps once. With the cache on, the next
search of the same network on the same data shapes and training settings (another strategy,
seed or budget, a resume, a restarted Ray worker: the schedule's length is an argument of the
step, `nas.schedule`) loads them from disk instead: on the 2-core CPU, the first of
`experiments.bench_vs_torch`'s nb201 architectures took 6.0 s instead of 13.9 s on digits and
4.0 s instead of 11.5 s on 32x32x3 (``--set compile_cache=DIR``, run twice). JAX still traces
the steps, since its cache key is the traced program; XLA's compile is what the cache saves.

The cache is trusted code: JAX runs what it finds there, so keep it in a folder only you can
write to (JAX's persistent cache documentation says more).
"""

from __future__ import annotations

import os
from pathlib import Path

import jax
from jax.experimental.compilation_cache import compilation_cache

OFF = "none"  # the option value that turns the cache off


def resolve(option: str | None) -> str | None:
    """The folder that `option` names: a path as given; None the default folder,
    ``$JAX_COMPILATION_CACHE_DIR`` where it is set, else ``nas/jax`` in the user's cache folder
    (``$XDG_CACHE_HOME``, else ``~/.cache``); ``"none"`` no folder (no cache)."""
    if option == OFF:
        return None
    if option:
        return str(Path(option).expanduser())
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return os.environ["JAX_COMPILATION_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return str(Path(base) / "nas" / "jax")


def enable(option: str | None) -> str | None:
    """Turns the cache on in the folder `option` names (`resolve`), for every compile however
    short, and returns that folder; turns it off and returns None where the option says so or
    the folder cannot be made (this process then compiles as usual).

    The folder has no size limit (JAX's default; the 42 networks of `bench_vs_torch` took
    27 MB, and it may be deleted at any time): JAX's least-recently-used eviction writes an
    access-time file beside each entry, and a process that evicts fails on the entries of one
    that does not (seen as write errors when the test suite's processes shared a folder)."""
    path = resolve(option)
    if path is not None:
        try:
            os.makedirs(path, exist_ok=True)
        except OSError:
            path = None
    if jax.config.jax_compilation_cache_dir != path:
        jax.config.update("jax_compilation_cache_dir", path)
        compilation_cache.reset_cache()  # JAX reads the setting once, at its first compile
    if path is None:
        return None
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return path
