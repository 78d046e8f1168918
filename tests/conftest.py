"""Shared fixtures: tiny versions of every built-in space, so tests compile in seconds."""

import pytest

from search_spaces import SPACES

TINY = {"channels": 4, "cells_per_stage": 1}


@pytest.fixture(params=sorted(SPACES))
def tiny_space(request):
    """Each built-in space at its smallest useful size."""
    return SPACES[request.param](**TINY)


@pytest.fixture(scope="session")
def compile_cache(tmp_path_factory):
    """A persistent JAX compilation cache shared by the Ray workers of every test."""
    return tmp_path_factory.getbasetemp() / "jax_cache"
