"""Counting XLA compiles, to prove that a new architecture never triggers one."""

from __future__ import annotations

import contextlib

import jax.monitoring

_EVENT = "/jax/core/compile/backend_compile_duration"
_count = 0


def _listen(event: str, duration: float, **kwargs) -> None:
    global _count
    if event == _EVENT:
        _count += 1


jax.monitoring.register_event_duration_secs_listener(_listen)


class CompileCounter:
    """Counts the XLA backend compiles inside a ``with`` block (in this process)."""

    count: int = 0


@contextlib.contextmanager
def count_compiles():
    """``with count_compiles() as c: ...`` then ``c.count`` is the number of XLA compiles."""
    counter, start = CompileCounter(), _count
    try:
        yield counter
    finally:
        counter.count = _count - start
