"""The strategy protocol: pure init / ask / tell over a pytree state with explicit keys.

A strategy proposes architectures (int vectors of a `SearchSpace`) and learns from their
scores; higher scores are better. Everything it knows lives in its state, a pytree of arrays,
so a search can checkpoint it and resume exactly. The base class does the shared work once:
it jit-compiles the three functions, keeps the best architecture and score, counts what it was
told, and treats a NaN score (a failed evaluation) as the worst possible score.

A new strategy subclasses `Strategy` and implements `_init`, `_ask` and `_tell`::

    strategy = RegularizedEvolution(space, population_size=20)
    state = strategy.init(jax.random.key(0))
    archs, state = strategy.ask(key, state, 4)        # (4, D) int32
    state = strategy.tell(archs, scores, state)        # scores: (4,) float
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from nas.space import SearchSpace

WORST_SCORE = -jnp.inf


@struct.dataclass
class State:
    """What every strategy tracks, plus the strategy's own state in `inner`."""

    best_arch: jax.Array
    best_score: jax.Array
    n_told: jax.Array
    inner: Any


class Strategy:
    """Base of every strategy; subclasses implement `_init`, `_ask` and `_tell`."""

    def __init__(self, space: SearchSpace):
        self.space = space
        self._jit_init = jax.jit(self._init)
        self._jit_ask = jax.jit(self._ask, static_argnums=2)
        self._jit_tell = jax.jit(self._tell_all)

    def init(self, key: jax.Array) -> State:
        """The initial state."""
        return State(
            best_arch=jnp.zeros(self.space.n_decisions, jnp.int32),
            best_score=jnp.asarray(WORST_SCORE, jnp.float32),
            n_told=jnp.asarray(0, jnp.int32),
            inner=self._jit_init(key),
        )

    def ask(self, key: jax.Array, state: State, n: int) -> tuple[jax.Array, State]:
        """Proposes `n` architectures at once, shape (n, D)."""
        if n < 1:
            raise ValueError(f"ask needs n >= 1 architectures, got {n}")
        archs, inner = self._jit_ask(key, state.inner, n)
        return archs, state.replace(inner=inner)

    def tell(self, archs, scores, state: State) -> State:
        """Learns from the scores of `archs` (shape (n, D) and (n,)); NaN counts as worst."""
        archs = jnp.asarray(archs, jnp.int32).reshape(-1, self.space.n_decisions)
        scores = jnp.asarray(scores, jnp.float32).reshape(-1)
        if archs.shape[0] != scores.shape[0]:
            raise ValueError(f"tell got {archs.shape[0]} archs but {scores.shape[0]} scores")
        return self._jit_tell(archs, scores, state)

    def _tell_all(self, archs, scores, state: State) -> State:
        scores = jnp.where(jnp.isnan(scores), WORST_SCORE, scores)
        i = jnp.argmax(scores)
        better = scores[i] > state.best_score
        return State(
            best_arch=jnp.where(better, archs[i], state.best_arch),
            best_score=jnp.where(better, scores[i], state.best_score),
            n_told=state.n_told + scores.shape[0],
            inner=self._tell(archs, scores, state.inner),
        )

    def _init(self, key: jax.Array) -> Any:
        raise NotImplementedError

    def _ask(self, key: jax.Array, inner: Any, n: int) -> tuple[jax.Array, Any]:
        raise NotImplementedError

    def _tell(self, archs: jax.Array, scores: jax.Array, inner: Any) -> Any:
        raise NotImplementedError
