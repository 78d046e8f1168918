"""Shared fixtures: tiny versions of every built-in space, so tests compile in seconds."""

import os
import tempfile
from pathlib import Path

# With XLA's optimisations off (below), its newer CPU fusion emitters cost compile time that
# tests never win back: a tiny DARTS child's train step compiles in 15-16 s without them against
# 24-27 s with them, and test_retrain with test_few_shot_runs take 132 s against 155 s. (Not a
# default for searches: with the optimisations on, the digits nb201 supernet compiled in 230 s
# without them against 68 s with them.) Set before JAX starts its backend; the processes the
# tests start inherit it.
os.environ["XLA_FLAGS"] = " ".join(
    (os.environ.get("XLA_FLAGS", ""), "--xla_cpu_use_fusion_emitters=false")
).strip()

import jax
import pytest

from nas.space import Cell, Node, SearchSpace, Skeleton
from search_spaces import SPACES

# Two CPU devices for the data-parallel tests (`nas.parallel`); every other test runs on the
# first. Set before JAX starts its backend.
jax.config.update("jax_num_cpu_devices", 2)

# matplotlib's font cache lives in the user's home by default, shared by every environment on
# the machine; one built by an environment since deleted names font files that are gone.
os.environ.setdefault("MPLCONFIGDIR", tempfile.mkdtemp(prefix="mpl-"))

# Many tests build the same tiny networks; a compilation cache for the session lets each
# program compile once (a third off the suite's time), however many trainers jit it. The
# environment hands it to the processes the tests start too (CLI runs, Ray workers).
# Under pytest-xdist the workers of one run share it: the run's id names the folder.
_RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID")
os.environ["JAX_COMPILATION_CACHE_DIR"] = (
    os.path.join(tempfile.gettempdir(), f"jax-cache-{_RUN}")
    if _RUN
    else tempfile.mkdtemp(prefix="jax-cache-")
)
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
# The tests check what programs compute, not how fast: XLA's optimisation passes cost more
# compile time than the tiny networks here ever win back (a DARTS supernet test: 55 s -> 38 s).
os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"] = "1"
jax.config.update("jax_disable_most_optimizations", True)

TINY = {"channels": 4, "cells_per_stage": 1}

# pytest-xdist hands each worker the next test file when it finishes one; the longest files
# (seconds on the 2-core machine, longest first) start first, so that none starts last and
# runs alone while the other workers idle. The other files keep their order.
LONGEST_FILES = (
    "test_distributed.py",  # 244
    "test_cli.py",  # 124
    "test_supernet.py",  # 122
    "test_export.py",  # 103
    "test_fashion_mnist.py",  # 93
    "test_distributed_cluster.py",  # 90
    "test_reinforce.py",  # 76
    "test_resume.py",  # 74
    "test_rundir_fuzz.py",  # 72
    "test_strategies.py",  # 67
    "test_retrain.py",  # 67
    "test_shared_options.py",  # 64
    "test_few_shot_runs.py",  # 58
)


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture
def small_space() -> SearchSpace:
    """Two nodes, three ops: 3 * 2 * 3 = 18 architectures, few enough to exhaust."""
    cell = Cell(1, (Node((0,), 1), Node((0, 1), 1, distinct=False)), ("a", "b", "c"), "last")
    return SearchSpace("small", {"normal": cell}, Skeleton(4, 1, 1, "residual"))


@pytest.fixture(params=sorted(SPACES))
def tiny_space(request):
    """Each built-in space at its smallest useful size."""
    return SPACES[request.param](**TINY)


@pytest.fixture(scope="session")
def compile_cache():
    """The run's persistent JAX compilation cache (above), for the Ray workers of every test."""
    return Path(os.environ["JAX_COMPILATION_CACHE_DIR"])
