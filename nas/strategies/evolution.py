"""Regularized (aging) evolution.

Reference: Real, Aggarwal, Huang & Le, "Regularized Evolution for Image Classifier Architecture
Search", AAAI 2019. The first `population_size` architectures are random; after that each child
is a one-decision mutation of the best of `tournament_size` members drawn without replacement,
and every told architecture replaces the oldest member, whatever its score.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from nas.space import SearchSpace
from nas.strategies.base import Strategy


@struct.dataclass
class EvolutionState:
    archs: jax.Array  # (P, D) population, a ring buffer ordered by age
    scores: jax.Array  # (P,)
    head: jax.Array  # the slot of the oldest member, replaced next
    filled: jax.Array  # how many slots hold a told architecture


class RegularizedEvolution(Strategy):
    """Aging evolution with tournament selection and one-decision mutation.

    Args:
      space: the search space.
      population_size: members kept alive (the paper's P).
      tournament_size: members drawn for each tournament (the paper's S).
    """

    def __init__(self, space: SearchSpace, *, population_size: int = 20, tournament_size: int = 5):
        if population_size < 2:
            raise ValueError(f"population_size must be at least 2, got {population_size}")
        if not 1 <= tournament_size <= population_size:
            raise ValueError(
                f"tournament_size must be in 1..population_size ({population_size}), "
                f"got {tournament_size}"
            )
        self.population_size, self.tournament_size = population_size, tournament_size
        super().__init__(space)

    def _init(self, key):
        p, d = self.population_size, self.space.n_decisions
        return EvolutionState(
            archs=jnp.zeros((p, d), jnp.int32),
            scores=jnp.full((p,), -jnp.inf, jnp.float32),
            head=jnp.asarray(0, jnp.int32),
            filled=jnp.asarray(0, jnp.int32),
        )

    def _ask(self, key, inner, n):
        def child(key):
            k_random, k_pick, k_mutate = jax.random.split(key, 3)
            drawn = jax.random.choice(
                k_pick, self.population_size, (self.tournament_size,), replace=False
            )
            parent = inner.archs[drawn[jnp.argmax(inner.scores[drawn])]]
            mutant = self.space.mutate(parent, k_mutate)
            full = inner.filled >= self.population_size
            return jnp.where(full, mutant, self.space.sample(k_random))

        return jax.vmap(child)(jax.random.split(key, n)), inner

    def _tell(self, archs, scores, inner):
        def insert(state, item):
            arch, score = item
            state = state.replace(
                archs=state.archs.at[state.head].set(arch),
                scores=state.scores.at[state.head].set(score),
                head=(state.head + 1) % self.population_size,
                filled=jnp.minimum(state.filled + 1, self.population_size),
            )
            return state, None

        return jax.lax.scan(insert, inner, (archs, scores))[0]
