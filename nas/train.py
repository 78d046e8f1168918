"""Jitted training and evaluation of a network (supernet or child) with Optax.

`Trainer` splits an NNX model into its graph and parameters once and compiles one train step
and one eval step. For the supernet the architecture is an argument of both steps, so every
architecture reuses the same compiled code; for a child net it is None. Trainers of equal
graphs (the seeds of one retrained architecture) with equal optimizers share their compiled
steps.
"""

from __future__ import annotations

import dataclasses
import functools
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("cosine", "constant")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to train.

    Args:
      optimizer: ``"sgd"`` (with Nesterov momentum) or ``"adam"``.
      learning_rate: the peak learning rate.
      momentum: SGD momentum.
      weight_decay: decoupled weight decay added to the update.
      grad_clip: the global gradient norm is clipped to this (0 turns clipping off).
      schedule: ``"cosine"`` decays to zero over the planned steps; ``"constant"`` does not.
      batch_size: examples per training step.
    """

    optimizer: str = "sgd"
    learning_rate: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    schedule: str = "cosine"
    batch_size: int = 64

    def __post_init__(self):
        for field, valid in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES)):
            if getattr(self, field) not in valid:
                raise ValueError(
                    f"TrainConfig.{field}={getattr(self, field)!r}; valid: {', '.join(valid)}"
                )
        if self.learning_rate <= 0 or self.batch_size < 1:
            raise ValueError(f"{self}: learning_rate and batch_size must be positive")


@functools.lru_cache(maxsize=64)
def make_optimizer(config: TrainConfig, total_steps: int) -> optax.GradientTransformation:
    """Clipping, weight decay and SGD or Adam under the configured schedule.

    Equal arguments give the same (stateless) transformation, so that jitted steps that close
    over it can be shared.
    """
    lr = config.learning_rate
    if config.schedule == "cosine":
        lr = optax.cosine_decay_schedule(lr, max(total_steps, 1))
    if config.optimizer == "sgd":
        opt = optax.sgd(lr, momentum=config.momentum, nesterov=True)
    else:
        opt = optax.adam(lr)
    parts = [optax.clip_by_global_norm(config.grad_clip)] if config.grad_clip > 0 else []
    parts += [optax.add_decayed_weights(config.weight_decay), opt]
    return optax.chain(*parts)


def cross_entropy(logits, labels):
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def _train_step(graphdef, tx, params, opt_state, x, y, arch):
    def loss_fn(p):
        return cross_entropy(nnx.merge(graphdef, p)(x, arch), y)

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss


def _eval_step(graphdef, params, x, y, arch):
    logits = nnx.merge(graphdef, params)(x, arch)
    return jnp.sum(jnp.argmax(logits, -1) == y), cross_entropy(logits, y) * y.shape[0]


def _predict_step(graphdef, params, x, arch):
    return jnp.argmax(nnx.merge(graphdef, params)(x, arch), -1)


@functools.lru_cache(maxsize=32)
def _shared_train_step(graphdef, tx):
    return jax.jit(partial(_train_step, graphdef, tx))


@functools.lru_cache(maxsize=32)
def _shared_eval_steps(graphdef):
    return jax.jit(partial(_eval_step, graphdef)), jax.jit(partial(_predict_step, graphdef))


def _jitted_steps(graphdef, tx):
    """The jitted (train, eval, predict) steps of `graphdef` with `tx`: those of an equal graph
    and optimizer if any were made, else new ones (always new for a graph that cannot be hashed,
    as one with a mutable static attribute)."""
    try:
        hash(graphdef)
        train, evals = _shared_train_step, _shared_eval_steps
    except TypeError:
        train, evals = _shared_train_step.__wrapped__, _shared_eval_steps.__wrapped__
    return train(graphdef, tx), *evals(graphdef)


class Trainer:
    """The parameters, optimizer state and compiled steps of one network.

    Args:
      model: the NNX network; its parameters are taken over by the trainer.
      config: how to train.
      total_steps: the steps the schedule plans for.
    """

    def __init__(self, model: nnx.Module, config: TrainConfig, total_steps: int):
        self.graphdef, self.params = nnx.split(model)
        self.config, self.tx = config, make_optimizer(config, total_steps)
        self.opt_state = self.tx.init(self.params)
        self._train, self._eval, self._predict = _jitted_steps(self.graphdef, self.tx)

    def train_step(self, x, y, arch=None) -> jax.Array:
        """One optimizer step on the batch (x, y); returns the loss before the step."""
        self.params, self.opt_state, loss = self._train(self.params, self.opt_state, x, y, arch)
        return loss

    def compile(self, x, y, arch=None) -> None:
        """Compiles the train step for batches shaped like (x, y); the state is left unchanged."""
        jax.block_until_ready(self._train(self.params, self.opt_state, x, y, arch))

    def evaluate(self, x, y, arch=None, *, batch_size: int = 512) -> tuple[float, float]:
        """Accuracy and mean loss over all of (x, y), in batches of `batch_size`."""
        correct, total_loss = 0.0, 0.0
        for start in range(0, len(x), batch_size):
            hits, loss = self._eval(
                self.params, x[start : start + batch_size], y[start : start + batch_size], arch
            )
            correct, total_loss = correct + float(hits), total_loss + float(loss)
        return correct / len(x), total_loss / len(x)

    def predict(self, x, arch=None, *, batch_size: int = 512) -> np.ndarray:
        """The predicted class of each example of `x`, in batches of `batch_size`."""
        parts = [
            self._predict(self.params, x[start : start + batch_size], arch)
            for start in range(0, len(x), batch_size)
        ]
        return np.concatenate(jax.device_get(parts))
