"""Timing train steps side by side on a machine whose speed drifts."""

from __future__ import annotations

import time
from collections.abc import Callable

import jax
import numpy as np


def median_ms(
    steps: dict[str, Callable[[], object]], rounds: int, run: int = 1
) -> dict[str, float]:
    """Median milliseconds of each call in `steps`, timed in alternation after one untimed call.

    Each round times every call `run` times in a row (their mean counts once), in turns, so
    that a shared host whose speed drifts slows every side alike rather than whichever ran
    then; a run longer than 1 is what a search does, several steps of one program before the
    next. A call's result is waited for with `jax.block_until_ready`; a call that queues work
    elsewhere (CUDA) synchronises itself.
    """
    for step in steps.values():  # compiled already; settles caches
        jax.block_until_ready(step())
    times = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(run):
                jax.block_until_ready(step())
            times[name].append((time.perf_counter() - start) / run)
    return {name: 1000 * float(np.median(t)) for name, t in times.items()}
