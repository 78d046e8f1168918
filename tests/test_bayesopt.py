"""Bayesian optimisation: the GP surrogate, fresh-key proposals, and search on a toy score."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nas.strategies import BayesOpt, RandomSearch, gp
from search_spaces import nb201


def _codes(n, width, seed):
    return jax.random.bernoulli(jax.random.key(seed), 0.3, (n, width)).astype(jnp.float32)


def test_posterior_mean_interpolates_observations():
    x = _codes(30, 20, 0)
    y = gp.standardise(jnp.sin(x @ jnp.arange(20.0)), jnp.ones(30))
    hyper = jnp.log(jnp.array([1.0, 2.0, 1e-6]))
    mean, cov = gp.posterior(hyper, x, y, jnp.ones(30), x)
    np.testing.assert_allclose(mean, y, atol=0.02)
    assert float(jnp.max(jnp.diag(cov))) < 0.02


def test_masked_rows_change_nothing():
    x, x_test = _codes(24, 16, 1), _codes(8, 16, 2)
    y = gp.standardise(x.sum(1), jnp.ones(24))
    mask = (jnp.arange(32) < 24).astype(jnp.float32)
    padded_x = jnp.concatenate([x, _codes(8, 16, 3)])
    padded_y = jnp.concatenate([y, jnp.full(8, 5.0)])  # garbage where masked
    hyper = gp.initial_hyper(16)
    fitted = gp.fit(hyper, x, y, jnp.ones(24), 20)
    padded = gp.fit(hyper, padded_x, jnp.where(mask > 0, padded_y, 0.0), mask, 20)
    np.testing.assert_allclose(fitted, padded, rtol=1e-4, atol=1e-5)
    mean, cov = gp.posterior(fitted, x, y, jnp.ones(24), x_test)
    mean_p, cov_p = gp.posterior(fitted, padded_x, jnp.where(mask > 0, padded_y, 0.0), mask, x_test)
    np.testing.assert_allclose(mean, mean_p, atol=1e-4)
    np.testing.assert_allclose(cov, cov_p, atol=1e-4)


def test_the_euclidean_kernel_is_positive_definite_where_the_l1_one_is_not():
    decisions = jax.random.randint(jax.random.key(4), (60, 4), 0, 4)
    x = jax.nn.one_hot(decisions, 4).reshape(60, 16)
    kernel = {m: gp.MaskedMatern52(1.0, 4.0, m) for m in gp.METRICS}
    ones = jnp.ones(60)
    eigenvalues = {m: jnp.linalg.eigvalsh(k((x, ones), (x, ones))) for m, k in kernel.items()}
    assert float(eigenvalues["l1"].min()) < -0.1 and float(eigenvalues["l2"].min()) > -1e-4


def test_beats_random_search_on_an_additive_score():
    space = nb201()
    weights = np.random.default_rng(0).normal(size=(space.n_decisions, 5))
    optimum = weights.max(1).sum()

    def regret_after(strategy, n, seed):
        state, key = strategy.init(jax.random.key(seed)), jax.random.key(seed + 1)
        for _ in range(n // 4):
            key, k = jax.random.split(key)
            archs, state = strategy.ask(k, state, 4)
            scores = weights[np.arange(space.n_decisions), np.asarray(archs)].sum(1)
            state = strategy.tell(archs, scores.astype(np.float32), state)
        return optimum - float(state.best_score)

    bayesopt, random = BayesOpt(space), RandomSearch(space)
    ours = [regret_after(bayesopt, 48, seed) for seed in range(3)]
    theirs = [regret_after(random, 48, seed) for seed in range(3)]
    assert np.mean(ours) < 0.5 * np.mean(theirs)
    assert min(ours) == pytest.approx(0.0, abs=1e-4)  # the optimum itself, at least once


def test_full_buffer_keeps_the_best_observations(small_space):
    space = small_space
    strategy = BayesOpt(space, capacity=4)
    state = strategy.init(jax.random.key(0))
    archs = space.sample(jax.random.key(1), 6)
    state = strategy.tell(archs, np.array([5, 1, 4, 3, 0, 2], np.float32), state)
    assert int(state.inner.count) == 4
    assert sorted(np.asarray(state.inner.scores).tolist()) == [2, 3, 4, 5]


def test_argument_errors(small_space):
    with pytest.raises(ValueError, match="valid: ei, ucb, thompson"):
        BayesOpt(small_space, acquisition="pi")
    with pytest.raises(ValueError, match="valid: onehot, decisions"):
        BayesOpt(small_space, encoding="paths")
    strategy = BayesOpt(small_space, neighbours=1, parents=0, random=8)
    assert strategy.pool_size == 8 + (3 - 1) + (2 - 1) + (3 - 1)  # samples and neighbours
    with pytest.raises(ValueError, match="1..13"):
        strategy.ask(jax.random.key(0), strategy.init(jax.random.key(0)), 14)
