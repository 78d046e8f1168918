"""The Gaussian-process surrogate of Bayesian optimisation, on tinygp.

Observations live in a fixed-size buffer with a mask, so one compiled function serves every
count of observations up to the buffer's size: a masked row has no covariance with any other
row, unit variance and a zero target, which leaves the likelihood's gradient and the posterior
exactly as if the row were absent.

The kernel is a Matern-5/2 on an architecture encoding (one-hot ops and adjacency, or one-hot
decisions): on one-hot codes the squared distance counts the decisions two architectures differ
in, so the kernel is a categorical (Hamming) kernel. Its amplitude, length scale and noise are
fitted by maximising the marginal likelihood with Adam, warm-started from the last fit.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
import tinygp

MIN_NOISE = 1e-4


class MaskedKernel(tinygp.kernels.Kernel):
    """`kernel` between rows whose masks are both 1; zero where either row is masked."""

    kernel: tinygp.kernels.Kernel

    def evaluate(self, X1, X2):
        (x1, m1), (x2, m2) = X1, X2
        return m1 * m2 * self.kernel.evaluate(x1, x2)


def initial_hyper(dim: int) -> jax.Array:
    """Log amplitude, log length scale and log noise to start from, for `dim`-wide codes."""
    return jnp.log(jnp.array([1.0, jnp.sqrt(dim / 2.0), 0.1], jnp.float32))


def _process(hyper, x, mask) -> tinygp.GaussianProcess:
    amplitude, scale, noise = jnp.exp(hyper)
    kernel = MaskedKernel(amplitude * tinygp.kernels.Matern52(scale=scale))
    diag = jnp.where(mask > 0, noise + MIN_NOISE, 1.0)
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


def fit(hyper, x, y, mask, steps: int, learning_rate: float = 0.05) -> jax.Array:
    """Hyperparameters after `steps` Adam steps on the negative log marginal likelihood.

    Args:
      hyper: the starting log hyperparameters, shape (3,).
      x: encodings, shape (N, F); y: standardised targets, shape (N,); mask: 1 for observed
        rows and 0 for padding, shape (N,).
    """
    tx = optax.adam(learning_rate)

    def loss(h):
        return -_process(h, x, mask).log_probability(y)

    def step(carry, _):
        h, opt_state = carry
        grads = jax.grad(loss)(h)
        grads = jnp.where(jnp.isfinite(grads), grads, 0.0)
        updates, opt_state = tx.update(grads, opt_state)
        h = jnp.clip(optax.apply_updates(h, updates), -7.0, 5.0)
        return (h, opt_state), None

    (hyper, _), _ = jax.lax.scan(step, (hyper, tx.init(hyper)), length=steps)
    return hyper


def posterior(hyper, x, y, mask, x_test) -> tuple[jax.Array, jax.Array]:
    """The posterior mean (M,) and covariance (M, M) of the noise-free function at `x_test`."""
    test_mask = jnp.ones(x_test.shape[0], x_test.dtype)
    conditioned = _process(hyper, x, mask).condition(y, (x_test, test_mask), diag=0.0).gp
    return conditioned.loc, conditioned.covariance
