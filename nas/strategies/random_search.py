"""Random search: every decision uniform and independent.

Reference: Li & Talwalkar, "Random Search and Reproducibility for Neural Architecture Search",
UAI 2019, which found it a strong baseline for weight-sharing NAS.
"""

from __future__ import annotations

import jax.numpy as jnp

from nas.strategies.base import Strategy


class RandomSearch(Strategy):
    """Samples each architecture uniformly from the space; learns nothing."""

    def _init(self, key):
        return jnp.zeros((), jnp.int32)

    def _ask(self, key, inner, n):
        return self.space.sample(key, n), inner

    def _tell(self, archs, scores, inner):
        return inner
