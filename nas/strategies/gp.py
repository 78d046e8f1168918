"""The Gaussian-process surrogate of Bayesian optimisation, on tinygp.

Observations live in a fixed-size buffer with a mask, so one compiled function serves every
count of observations up to the buffer's size: a masked row has no covariance with any other
row, unit variance and a zero target, which leaves the likelihood's gradient and the posterior
exactly as if the row were absent.

The kernel is a Matern-5/2 on an architecture encoding (one-hot ops and adjacency, or one-hot
decisions), on one of two distances between codes:

- ``"l1"`` (tinygp's default distance): on one-hot codes, twice the number of decisions two
  architectures differ in, a categorical (Hamming) kernel. A Matern kernel of an L1 distance is
  not positive definite for every set of codes; the fitted noise usually keeps it so.
- ``"l2"``: the Euclidean distance, the square root of the L1 one on one-hot codes, for which
  the Matern kernel is positive definite whatever the codes.

Its amplitude, length scale and noise are fitted by maximising the marginal likelihood with
Adam, warm-started from the last fit.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
import tinygp

MIN_NOISE = 1e-4


METRICS = ("l1", "l2")


class MaskedMatern52(tinygp.kernels.Kernel):
    """A Matern-5/2 kernel between rows whose masks are both 1 (zero where either row is
    masked), on the `metric` distance.

    It computes whole covariance matrices itself: the distances between codes first, with
    matrix products, then the kernel of distance over length scale. The distances do not depend
    on the hyperparameters, so the likelihood's gradient costs elementwise work alone (tinygp's
    pair-by-pair default differentiates through every feature of every pair: a fit step took 5x
    as long at 512 observations).
    """

    amplitude: jax.Array
    scale: jax.Array
    metric: str = eqx.field(static=True, default="l1")

    def evaluate(self, X1, X2):
        (x1, m1), (x2, m2) = X1, X2
        return self._of_distance(_distances(x1[None], x2[None], self.metric)[0, 0]) * m1 * m2

    def __call__(self, X1, X2=None):
        (x1, m1) = X1
        if X2 is None:  # the diagonal
            return m1 * self._of_distance(jnp.zeros_like(m1))
        (x2, m2) = X2
        return m1[:, None] * m2[None, :] * self._of_distance(_distances(x1, x2, self.metric))

    def _of_distance(self, distance):
        r = jnp.sqrt(5.0) * distance / self.scale
        return self.amplitude * (1.0 + r + r * r / 3.0) * jnp.exp(-r)


def _distances(x1, x2, metric: str) -> jax.Array:
    """The (N, M) distances between the rows of `x1` (N, F) and `x2` (M, F)."""
    if metric == "l1":
        return jnp.sum(jnp.abs(x1[:, None, :] - x2[None, :, :]), axis=-1)
    squared = jnp.sum(x1 * x1, 1)[:, None] + jnp.sum(x2 * x2, 1)[None, :] - 2.0 * x1 @ x2.T
    return jnp.sqrt(jnp.maximum(squared, 0.0))


def initial_hyper(dim: int) -> jax.Array:
    """Log amplitude, log length scale and log noise to start from, for `dim`-wide codes."""
    return jnp.log(jnp.array([1.0, jnp.sqrt(dim / 2.0), 0.1], jnp.float32))


def noise(hyper) -> jax.Array:
    """The observation noise variance of `hyper`."""
    return jnp.exp(hyper[2]) + MIN_NOISE


def _process(hyper, x, mask, metric: str) -> tinygp.GaussianProcess:
    amplitude, scale, _ = jnp.exp(hyper)
    kernel = MaskedMatern52(amplitude, scale, metric)
    diag = jnp.where(mask > 0, noise(hyper), 1.0)
    return tinygp.GaussianProcess(kernel, (x, mask), diag=diag)


def standardise(y, mask):
    """Zero mean and unit variance over the unmasked entries; masked entries become 0."""
    n = jnp.maximum(mask.sum(), 1.0)
    mean = jnp.sum(y * mask) / n
    std = jnp.sqrt(jnp.sum(((y - mean) * mask) ** 2) / n)
    return jnp.where(mask > 0, (y - mean) / jnp.maximum(std, 1e-6), 0.0)


def copula(y, mask):
    """Ranks mapped through the normal quantile function; masked entries become 0.

    A Gaussian copula (Salinas, Shen & Perrone, ICML 2020): the surrogate models the order of
    the scores, not their scale, so a few very bad architectures cannot squash the differences
    among the good ones.
    """
    n = jnp.maximum(mask.sum(), 1.0)
    below = jnp.sum(mask[None, :] * (y[None, :] < y[:, None]), axis=1)
    ties = jnp.sum(mask[None, :] * (y[None, :] == y[:, None]), axis=1)
    quantile = jnp.clip((below + 0.5 * ties) / n, 0.5 / n, 1 - 0.5 / n)
    return jnp.where(mask > 0, jax.scipy.stats.norm.ppf(quantile), 0.0)


TRANSFORMS = {"copula": copula, "standardise": standardise}


def fit(
    hyper, x, y, mask, steps: int, metric: str = "l1", learning_rate: float = 0.05
) -> jax.Array:
    """Hyperparameters after `steps` Adam steps on the negative log marginal likelihood.

    Args:
      hyper: the starting log hyperparameters (`initial_hyper`).
      x: encodings, shape (N, F); y: standardised targets, shape (N,); mask: 1 for observed
        rows and 0 for padding, shape (N,).
      steps: Adam steps.
      metric: the kernel's distance (one of `METRICS`).
    """
    tx = optax.adam(learning_rate)

    def loss(h):
        return -_process(h, x, mask, metric).log_probability(y)

    def step(carry, _):
        h, opt_state = carry
        grads = jax.grad(loss)(h)
        grads = jnp.where(jnp.isfinite(grads), grads, 0.0)
        updates, opt_state = tx.update(grads, opt_state)
        h = jnp.clip(optax.apply_updates(h, updates), -7.0, 5.0)
        return (h, opt_state), None

    (hyper, _), _ = jax.lax.scan(step, (hyper, tx.init(hyper)), length=steps)
    return hyper


def posterior(hyper, x, y, mask, x_test, metric: str = "l1") -> tuple[jax.Array, jax.Array]:
    """The posterior mean (M,) and covariance (M, M) of the noise-free function at `x_test`."""
    test_mask = jnp.ones(x_test.shape[0], x_test.dtype)
    process = _process(hyper, x, mask, metric)
    conditioned = process.condition(y, (x_test, test_mask), diag=0.0).gp
    return conditioned.loc, conditioned.covariance
