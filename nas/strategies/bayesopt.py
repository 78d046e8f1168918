"""Bayesian optimisation: a Gaussian-process surrogate and an acquisition over a candidate pool.

After an initial random design, each ask fits the surrogate (`nas.strategies.gp`) to every
observation so far and scores a candidate pool: every neighbour of the best observations (local
search, which White, Zela, Ru, Liu & Hutter, UAI 2021, found hard to beat on NAS benchmarks),
mutations of the best observed architectures, as in BANANAS (White, Neiswanger & Savani, AAAI
2021), and uniform samples. A candidate whose canonical key was already evaluated, or already
appears earlier in the pool, is proposed only once every fresh candidate is taken. Acquisitions:

- ``"ei"``: expected improvement over the best observation;
- ``"ucb"``: the posterior mean plus `ucb_beta` standard deviations;
- ``"thompson"``: the best candidate of a joint draw from the posterior.

A batch of n is chosen one at a time: after each pick, EI and UCB condition the posterior on a
fantasy observation at the posterior mean (the kriging believer; Ginsbourger et al., 2010), and
Thompson sampling takes the best of a fresh joint draw.

Everything but the canonical keys runs in jitted JAX. The keys are strings computed on the host,
so `ask` is split into three calls: the pool (jitted), the fresh-key mask (host), and the fit and
pick (jitted, compiled once per power-of-two bucket of the observation count).

Defaults were chosen with `experiments.tune_strategies` on NAS-Bench-Graph's cora, citeseer and
arxiv (10 seeds, 100 queries, mean validation regret): the neighbours of the best 3 and the
mutants of the best 5 (.0067) beat those of the best 1 and 10 (.0078), and so did every other
change tried on the old defaults: UCB (.0073), Thompson sampling (.0085), standardised targets
(.0082), 5 or 20 initial samples (.0074, .0070), 30 fit steps (.0078), the decision encoding
(.0085); 20 initial samples, with or without UCB, added nothing to the new ones (.0069, .0067).
Later, over 20 seeds, the kernel's Euclidean distance (``metric="l2"``, positive definite on any
codes) beat the L1 distance it replaced (.0065 against .0070; over 10 seeds .0061 against
.0065), and a length scale per feature of the encoding did worse (.0068 with L1, .0076 with L2,
10 seeds), so it is not offered.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.scipy.stats import norm

from nas.space import SearchSpace
from nas.strategies import gp
from nas.strategies.base import State, Strategy
from nas.strategies.fresh import FreshKeys

ACQUISITIONS = ("ei", "ucb", "thompson")
MIN_BUCKET = 16


@struct.dataclass
class BayesOptState:
    archs: jax.Array  # (C, D) observations; rows [0, count) are filled
    scores: jax.Array  # (C,)
    count: jax.Array  # observations held
    hyper: jax.Array  # (3,) the last fit's log amplitude, length scale and noise


class BayesOpt(Strategy):
    """Gaussian-process Bayesian optimisation over architecture encodings.

    Args:
      space: the search space.
      acquisition: ``"ei"``, ``"ucb"`` or ``"thompson"``.
      initial: random architectures before the surrogate takes over.
      encoding: the architecture encoding the kernel reads (a key of `nas.space.ENCODINGS`).
      transform: how scores become the GP's targets: ``"copula"`` (normal quantiles of their
        ranks) or ``"standardise"`` (zero mean, unit variance).
      capacity: observations the surrogate holds; past it, a new observation replaces the
        worst one held if it scores higher.
      neighbours: best observations whose every one-decision neighbour enters the pool.
      parents: best observations whose random mutations enter the pool.
      mutations: mutants per parent (half change one decision, half two).
      random: uniform samples in the pool.
      fit_steps: Adam steps on the marginal likelihood per ask, warm-started.
      metric: the kernel's distance between encodings (one of `gp.METRICS`).
      ucb_beta: standard deviations UCB adds to the mean.
    """

    def __init__(
        self,
        space: SearchSpace,
        *,
        acquisition: str = "ei",
        initial: int = 10,
        encoding: str = "onehot",
        transform: str = "copula",
        capacity: int = 1024,
        neighbours: int = 3,
        parents: int = 5,
        mutations: int = 20,
        random: int = 100,
        fit_steps: int = 10,
        ucb_beta: float = 2.0,
        metric: str = "l2",
    ):
        if transform not in gp.TRANSFORMS:
            raise ValueError(f"unknown transform {transform!r}; valid: {', '.join(gp.TRANSFORMS)}")
        if metric not in gp.METRICS:
            raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(gp.METRICS)}")
        if acquisition not in ACQUISITIONS:
            raise ValueError(
                f"unknown acquisition {acquisition!r}; valid: {', '.join(ACQUISITIONS)}"
            )
        for name, value in (("initial", initial), ("capacity", capacity), ("random", random)):
            if value < 1:
                raise ValueError(f"BayesOpt {name} must be at least 1, got {value}")
        if min(neighbours, parents, mutations, fit_steps) < 0:
            raise ValueError(
                "BayesOpt neighbours, parents, mutations and fit_steps must be at least 0"
            )
        self.acquisition, self.initial, self.encoding = acquisition, initial, encoding
        self.transform = gp.TRANSFORMS[transform]
        self.capacity, self.parents, self.mutations = capacity, parents, mutations
        self.neighbours = neighbours
        self.random, self.fit_steps, self.ucb_beta = random, fit_steps, ucb_beta
        self.metric = metric
        card = space.cardinalities
        self._neighbourhood = (
            np.concatenate([np.full(c - 1, d) for d, c in enumerate(card)]).astype(np.int32),
            np.concatenate([np.arange(1, c) for c in card]).astype(np.int32),
        )
        self.n_local = neighbours * len(self._neighbourhood[0]) + parents * mutations
        self.pool_size = self.n_local + random
        space.encode(np.zeros(space.n_decisions, np.int32), encoding)  # checks the name
        super().__init__(space)
        self._jit_pool = jax.jit(self._pool)
        self._jit_pick = jax.jit(self._pick, static_argnums=(4, 5))
        self._fresh = FreshKeys(space)

    def _init(self, key):
        width = self._encode(jnp.zeros(self.space.n_decisions, jnp.int32)).shape[0]
        return BayesOptState(
            archs=jnp.zeros((self.capacity, self.space.n_decisions), jnp.int32),
            scores=jnp.full((self.capacity,), -jnp.inf, jnp.float32),
            count=jnp.asarray(0, jnp.int32),
            hyper=gp.initial_hyper(width),
        )

    def ask(self, key: jax.Array, state: State, n: int) -> tuple[jax.Array, State]:
        """Proposes `n` architectures with distinct canonical keys not evaluated before."""
        if not 1 <= n <= self.pool_size:
            raise ValueError(f"BayesOpt asks for 1..{self.pool_size} (its pool) at once, got {n}")
        inner = state.inner
        count = int(inner.count)
        k_pool, k_pick = jax.random.split(key)
        pool = self._jit_pool(k_pool, inner)
        fresh = self._fresh.mask(np.asarray(pool), np.asarray(inner.archs[:count]))
        rows = self._bucket(count)
        archs, inner = self._jit_pick(k_pick, inner, pool, jnp.asarray(fresh), n, rows)
        return archs, state.replace(inner=inner)

    def _tell(self, archs, scores, inner):
        def insert(inner, item):
            arch, score = item
            full = inner.count >= self.capacity
            slot = jnp.where(full, jnp.argmin(inner.scores), inner.count)
            keep = ~full | (score > inner.scores[slot])
            return inner.replace(
                archs=jnp.where(keep, inner.archs.at[slot].set(arch), inner.archs),
                scores=jnp.where(keep, inner.scores.at[slot].set(score), inner.scores),
                count=jnp.minimum(inner.count + 1, self.capacity),
            ), None

        return jax.lax.scan(insert, inner, (archs, scores))[0]

    # -- the three parts of an ask -----------------------------------------------------------

    def _pool(self, key, inner):
        """Every neighbour (one decision changed) of the best `neighbours` observations,
        mutants of the best `parents` (one or two decisions changed), then uniform samples:
        (pool_size, D)."""
        k_random, k_mutate = jax.random.split(key)
        order = jnp.argsort(-inner.scores)
        position, shift = self._neighbourhood
        card = jnp.asarray(self.space.cardinalities)[position]

        def neighbourhood(arch):
            rows = jnp.tile(arch, (len(position), 1))
            return rows.at[jnp.arange(len(position)), position].set((arch[position] + shift) % card)

        centres = inner.archs[order[: self.neighbours]]
        neighbours = jax.vmap(neighbourhood)(centres).reshape(-1, self.space.n_decisions)
        parents = jnp.repeat(inner.archs[order[: self.parents]], self.mutations, axis=0)
        twice = jnp.arange(parents.shape[0]) % 2 == 1

        def mutant(parent, again, key):
            k1, k2 = jax.random.split(key)
            once = self.space.mutate(parent, k1)
            return jnp.where(again, self.space.mutate(once, k2), once)

        keys = jax.random.split(k_mutate, parents.shape[0])
        mutants = jax.vmap(mutant)(parents, twice, keys).reshape(-1, self.space.n_decisions)
        return jnp.concatenate([neighbours, mutants, self.space.sample(k_random, self.random)])

    def _bucket(self, count: int) -> int:
        """Rows of the buffer the surrogate reads: a power of two >= count, so compiles are few."""
        return min(self.capacity, max(MIN_BUCKET, 1 << max(count - 1, 0).bit_length()))

    def _pick(self, key, inner, pool, fresh, n, rows):
        """Fits the surrogate on the first `rows` observations and picks `n` of the pool."""
        k_design, k_draw = jax.random.split(key)
        x_obs = jax.vmap(self._encode)(inner.archs[:rows])
        mask = (jnp.arange(rows) < inner.count).astype(jnp.float32)
        scores = inner.scores[:rows]
        finite = jnp.isfinite(scores) & (mask > 0)
        # A failed evaluation (-inf) counts as the worst finite score seen.
        worst = jnp.min(jnp.where(finite, scores, jnp.inf))
        y = self.transform(jnp.where(finite, scores, jnp.where(mask > 0, worst, 0.0)), mask)
        hyper = gp.fit(inner.hyper, x_obs, y, mask, self.fit_steps, self.metric)
        x_pool = jax.vmap(self._encode)(pool)
        mean, cov = gp.posterior(hyper, x_obs, y, mask, x_pool, self.metric)
        best_y = jnp.max(jnp.where(mask > 0, y, -jnp.inf))
        noise = gp.noise(hyper)

        # The initial design: uniform samples only, in random order.
        is_random = jnp.arange(pool.shape[0]) >= self.n_local
        order = jax.random.uniform(k_design, (pool.shape[0],))
        design = jnp.where(is_random, order, order - 2.0)
        in_design = inner.count < self.initial
        draws = self._draws(k_draw, mean, cov, n)

        def pick(carry, draw):
            cov, taken = carry
            value = jnp.where(in_design, design, self._value(mean, cov, best_y, draw))
            available = ~taken & fresh
            value = jnp.where(jnp.any(available), jnp.where(available, value, -jnp.inf), value)
            i = jnp.argmax(jnp.where(taken, -jnp.inf, value))
            # Kriging believer: a fantasy observation at i, valued at its mean, shrinks the
            # variance near i and leaves the mean as it is.
            cov = cov - jnp.outer(cov[:, i], cov[i]) / (cov[i, i] + noise)
            return (cov, taken.at[i].set(True)), i

        taken = jnp.zeros(pool.shape[0], bool)
        _, picks = jax.lax.scan(pick, (cov, taken), draws)
        return pool[picks], inner.replace(hyper=hyper)

    def _draws(self, key, mean, cov, n):
        """`n` joint posterior draws over the pool for Thompson sampling, else placeholders."""
        if self.acquisition != "thompson":
            return jnp.zeros((n, mean.shape[0]))
        jitter = 1e-5 * jnp.eye(mean.shape[0])
        chol = jnp.linalg.cholesky(cov + jitter)
        return mean + jax.random.normal(key, (n, mean.shape[0])) @ chol.T

    def _value(self, mean, cov, best_y, draw):
        """The acquisition value of every candidate under the current (fantasy) posterior."""
        std = jnp.sqrt(jnp.maximum(jnp.diag(cov), 1e-12))
        if self.acquisition == "ucb":
            return mean + self.ucb_beta * std
        if self.acquisition == "thompson":
            return draw
        z = (mean - best_y) / std
        return std * (z * norm.cdf(z) + norm.pdf(z))

    def _encode(self, arch):
        return self.space.encode(arch, self.encoding, xp=jnp)
