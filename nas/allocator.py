"""The memory allocator a command runs with: tcmalloc where the system has it.

XLA-CPU allocates the temporary buffers of each execution afresh: 87 MB a train step for the
nb201 supernet on 32x32x3 images, batch 64. glibc's malloc serves a block that large from a
new memory mapping and unmaps it when the step frees it, so the step's kernels fault its pages
in again at every step; tcmalloc keeps freed memory for the next request. On the 2-core CPU,
with tcmalloc preloaded against without, that step took 92.5 against 116.4 ms and its compile
6.1 against 6.9 s; the digits step (few large buffers) 5% less
(``python -m experiments.bench_allocator``). The C library's own remedy, transparent huge
pages for its large blocks (``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``), cut that step's page
faults from 21,500 to 400 but not its system time (the kernel still clears each new block), and
the step only to 94.1 against 100.9 ms, where tcmalloc took 80.3 ms (same run), so the command
does not fall back to it where tcmalloc is missing.

So the `nas` command starts again, once, with tcmalloc preloaded (``LD_PRELOAD``) where it is
installed (``apt install libtcmalloc-minimal4`` on Debian and Ubuntu) and no library is
preloaded already; processes it starts, such as a local Ray cluster's workers, inherit it.
``NAS_ALLOCATOR`` chooses: ``system`` keeps the C library's malloc, a path or library name
preloads that library instead. The experiment scripts run with the allocator they are started
with, so that a comparison's sides share it (PyTorch gains from tcmalloc too, on digits more
than XLA does: `experiments.bench_vs_torch` records which allocator ran).
"""

from __future__ import annotations

import ctypes.util
import os
import sys

VARIABLE = "NAS_ALLOCATOR"
SYSTEM = "system"  # the value of `VARIABLE` that keeps the C library's malloc
TCMALLOC = ("tcmalloc_minimal", "tcmalloc")  # the names `ctypes.util.find_library` looks for


def preload_environment(environ) -> dict | None:
    """The environment to start this command again in, with the allocator `environ` chooses
    preloaded; None where the command should run as it is: off Linux, with ``LD_PRELOAD``
    set already (by the user, or by this command's first start), with ``NAS_ALLOCATOR=system``,
    or with no tcmalloc installed."""
    choice = environ.get(VARIABLE, "")
    if not sys.platform.startswith("linux") or environ.get("LD_PRELOAD") or choice == SYSTEM:
        return None
    library = choice or tcmalloc()
    return None if library is None else {**environ, "LD_PRELOAD": library}


def tcmalloc() -> str | None:
    """The name of the system's tcmalloc library, as ``LD_PRELOAD`` takes it; None if none."""
    return next(filter(None, map(ctypes.util.find_library, TCMALLOC)), None)


def restart_with_preloaded_allocator() -> None:
    """Starts this process's command again (`sys.orig_argv`) with the allocator
    `preload_environment` chooses; returns, changing nothing, where it chooses none. Call it
    first thing in a program's entry point, before any thread starts."""
    environ = preload_environment(os.environ)
    if environ is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, sys.orig_argv, environ)
