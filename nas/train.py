"""Jitted training and evaluation of a network (supernet or child) with Optax.

`Trainer` splits an NNX model into its graph and parameters once and compiles one train step
and one eval step. For the supernet the architecture is an argument of both steps, so every
architecture reuses the same compiled code; for a child net it is None. Trainers of equal
graphs (the seeds of one retrained architecture) with equal optimizers share their compiled
steps, whatever number of steps their schedules plan (an argument of the step,
`nas.schedule`).
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

from nas.parallel import data_parallel, device_mesh, mean_over_devices, replicated, split
from nas.schedule import scale_by_cosine
from nas.xla_options import compiler_options

OPTIMIZERS = ("sgd", "adam")
# The most steps that one call of `Trainer.train_steps`'s compiled loop runs (`loop_length`):
# their batches are stacked and copied to the devices together.
MAX_STEPS_PER_CALL = 50
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
      devices: local devices the batch is split across, each step (data parallelism with
        per-device batch norm statistics, `nas.parallel`); on a CPU,
        `nas.parallel.use_cpu_devices` makes them.
    """

    optimizer: str = "sgd"
    learning_rate: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    schedule: str = "cosine"
    batch_size: int = 64
    devices: int = 1

    def __post_init__(self):
        for field, valid in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES)):
            if getattr(self, field) not in valid:
                raise ValueError(
                    f"TrainConfig.{field}={getattr(self, field)!r}; valid: {', '.join(valid)}"
                )
        if self.learning_rate <= 0 or self.batch_size < 1 or self.devices < 1:
            raise ValueError(f"{self}: learning_rate, batch_size and devices must be positive")
        if self.batch_size % self.devices:
            raise ValueError(
                f"TrainConfig: batch_size={self.batch_size} does not split into "
                f"devices={self.devices} equal shares"
            )


@functools.lru_cache(maxsize=64)
def make_optimizer(config: TrainConfig) -> optax.GradientTransformationExtraArgs:
    """Clipping, weight decay and SGD or Adam under the configured schedule.

    Its update takes the steps a cosine schedule spans as the extra argument ``total_steps``
    (`nas.schedule`), so that one compiled step serves any number of steps. Equal configs give
    the same (stateless) transformation, so that jitted steps that close over it can be shared.
    """
    lr = config.learning_rate
    scale = scale_by_cosine(lr) if config.schedule == "cosine" else optax.scale_by_learning_rate(lr)
    if config.optimizer == "sgd":  # optax.sgd and optax.adam, with the schedule above
        direction = optax.trace(decay=config.momentum, nesterov=True)
    else:
        direction = optax.scale_by_adam()
    parts = [optax.clip_by_global_norm(config.grad_clip)] if config.grad_clip > 0 else []
    parts += [optax.add_decayed_weights(config.weight_decay), optax.chain(direction, scale)]
    return optax.chain(*parts)


def cross_entropy(logits, labels):
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def _train_step(graphdef, tx, defs, parallel, leaves, x, y, arch, total_steps):
    params, opt_state = (jax.tree.unflatten(d, s) for d, s in zip(defs, leaves, strict=True))

    def loss_fn(p):
        return cross_entropy(nnx.merge(graphdef, p)(x, arch), y)

    loss, grads = jax.value_and_grad(loss_fn)(params)
    if parallel:
        loss, grads = mean_over_devices((loss, grads))
    updates, opt_state = tx.update(grads, opt_state, params, total_steps=total_steps)
    return (jax.tree.leaves(optax.apply_updates(params, updates)), jax.tree.leaves(opt_state)), loss


def _train_loop(graphdef, tx, defs, parallel, leaves, xs, ys, archs, count, total_steps):
    """`_train_step` on each of the first `count` batches of `xs`, `ys` in turn (the rest pad a
    call to its compiled length), with the architecture ``archs[i]`` (None for a child net);
    returns the leaves and the losses, NaN past `count`."""

    def step(i, carry):
        leaves, losses = carry
        arch = None if archs is None else archs[i]
        args = (leaves, xs[i], ys[i], arch, total_steps)
        leaves, loss = _train_step(graphdef, tx, defs, parallel, *args)
        return leaves, losses.at[i].set(loss)

    losses = jnp.full(xs.shape[0], jnp.nan, jnp.float32)
    return jax.lax.fori_loop(0, count, step, (leaves, losses))


def _eval_step(graphdef, params_def, leaves, x, y, arch):
    logits = nnx.merge(graphdef, jax.tree.unflatten(params_def, leaves))(x, arch)
    return jnp.sum(jnp.argmax(logits, -1) == y), cross_entropy(logits, y) * y.shape[0]


def _predict_step(graphdef, params_def, leaves, x, arch):
    return jnp.argmax(nnx.merge(graphdef, jax.tree.unflatten(params_def, leaves))(x, arch), -1)


@functools.lru_cache(maxsize=32)
def _shared_train_step(graphdef, tx, defs, options, devices, loop):
    """The jitted train step, or with `loop` the jitted `_train_loop` (batches stacked along
    a leading axis, so the batch axis is the second)."""
    step = partial(_train_loop if loop else _train_step, graphdef, tx, defs, devices > 1)
    if devices > 1:
        mesh = device_mesh(devices)
        step = data_parallel(step, mesh, n_replicated=1, n_split=2, split_axis=int(loop))
    return jax.jit(step, compiler_options=dict(options))


@functools.lru_cache(maxsize=32)
def _shared_eval_steps(graphdef, params_def, options):
    jit = partial(jax.jit, compiler_options=dict(options))
    return (
        jit(partial(_eval_step, graphdef, params_def)),
        jit(partial(_predict_step, graphdef, params_def)),
    )


def _jitted_steps(graphdef, tx, defs, options, devices):
    """The jitted (train, train loop, eval, predict) steps of `graphdef` with `tx`, over flat
    leaves of the trees `defs` (parameters, optimizer state), compiled with the XLA `options`,
    the train steps data-parallel over `devices`: those of an equal graph, optimizer, options
    and devices if any were made, else new ones (always new for a graph that cannot be hashed,
    as one with a mutable static attribute)."""
    try:
        hash((graphdef, defs))
        train, evals = _shared_train_step, _shared_eval_steps
    except TypeError:
        train, evals = _shared_train_step.__wrapped__, _shared_eval_steps.__wrapped__
    return (
        train(graphdef, tx, defs, options, devices, False),
        train(graphdef, tx, defs, options, devices, True),
        *evals(graphdef, defs[0], options),
    )


def loop_length(steps: int) -> int:
    """The `Trainer`'s ``steps_per_call`` for runs of `steps` steps: all of them in one call,
    or in equal calls of at most `MAX_STEPS_PER_CALL`."""
    calls = -(-max(steps, 1) // MAX_STEPS_PER_CALL)
    return -(-max(steps, 1) // calls)


class Trainer:
    """The parameters, optimizer state and compiled steps of one network.

    The steps are compiled with `nas.xla_options.compiler_options` for the network's
    ``input_shape`` (where it has one). The trainer holds the parameters and optimizer state as
    flat lists of arrays, which the jitted steps take and return: passing an NNX `State` would
    rebuild each of its `Variable`s in Python at every call (about 4 ms of a 20-40 ms nb201
    supernet step on digits, whose 189 parameters and their momenta make 378). `params` and
    `opt_state` give and take the trees.

    `train_steps` runs several steps in one call of a compiled loop: a search's evaluation
    steps pay JAX's dispatch, and the creation of a result array per parameter and per
    optimizer state leaf, once rather than at every step (`experiments.bench_supernet`).

    Args:
      model: the NNX network; its parameters are taken over by the trainer.
      config: how to train.
      total_steps: the steps the schedule plans for.
      steps_per_call: the steps each call of `train_steps`'s compiled loop runs (the length
        it is compiled for); 1 runs `train_step` in turn.
    """

    def __init__(
        self, model: nnx.Module, config: TrainConfig, total_steps: int, *, steps_per_call=1
    ):
        if steps_per_call < 1:
            raise ValueError(f"Trainer: steps_per_call={steps_per_call}; expected at least 1")
        self.graphdef, params = nnx.split(model)
        self.config, self.tx = config, make_optimizer(config)
        self.steps_per_call = steps_per_call
        opt_state = jax.jit(self.tx.init)(params)  # one compile, not one per parameter shape
        self._defs = (jax.tree.structure(params), jax.tree.structure(opt_state))
        # With several devices, the leaves are copies on each and the batches split across
        # them; `params`, `opt_state` and the eval steps use the first device's copies.
        self._mesh = device_mesh(config.devices) if config.devices > 1 else None
        self._leaves = (
            self._placed(jax.tree.leaves(params)),
            self._placed(jax.tree.leaves(opt_state)),
        )
        # An argument of every step, not a constant of the compiled program (`nas.schedule`).
        self._total_steps = self._placed([jnp.asarray(total_steps, jnp.float32)])[0]
        self.compiler_options = compiler_options(getattr(model, "input_shape", None))
        self._train, self._train_loop, self._eval, self._predict = _jitted_steps(
            self.graphdef, self.tx, self._defs, self.compiler_options, config.devices
        )

    @property
    def params(self) -> nnx.State:
        """The network's parameters."""
        return jax.tree.unflatten(self._defs[0], self._first_copies(self._leaves[0]))

    @params.setter
    def params(self, params) -> None:
        self._leaves = (self._flatten(params, 0, "params"), self._leaves[1])

    @property
    def opt_state(self):
        """The optimizer's state."""
        return jax.tree.unflatten(self._defs[1], self._first_copies(self._leaves[1]))

    @opt_state.setter
    def opt_state(self, opt_state) -> None:
        self._leaves = (self._leaves[0], self._flatten(opt_state, 1, "opt_state"))

    def snapshot(self) -> tuple:
        """The parameters and optimizer state as they are now, for `restore` (no copy: the
        steps never change arrays in place)."""
        return self._leaves

    def restore(self, snapshot: tuple) -> None:
        """Puts back the parameters and optimizer state of a `snapshot`."""
        self._leaves = snapshot

    def _flatten(self, tree, i: int, name: str) -> list:
        leaves, structure = jax.tree.flatten(tree)
        if structure != self._defs[i]:
            raise ValueError(
                f"Trainer.{name}: the tree does not have the structure of this network's "
                f"{name} ({len(leaves)} leaves given, {self._defs[i].num_leaves} expected)"
            )
        return self._placed(leaves)

    def _placed(self, leaves: list) -> list:
        """`leaves` copied to every device of a data-parallel trainer (as they are, else)."""
        return leaves if self._mesh is None else jax.device_put(leaves, replicated(self._mesh))

    def _first_copies(self, leaves: list) -> list:
        """The first device's copies of a data-parallel trainer's `leaves` (no copy made)."""
        return leaves if self._mesh is None else [a.addressable_shards[0].data for a in leaves]

    def train_step(self, x, y, arch=None) -> jax.Array:
        """One optimizer step on the batch (x, y); returns the loss before the step."""
        x, y = self._split_batch((x, y), len(x), 0, "train_step")
        self._leaves, loss = self._train(self._leaves, x, y, arch, self._total_steps)
        return loss

    def train_steps(self, xs, ys, arch=None) -> jax.Array:
        """One optimizer step on each batch of `xs`, `ys` (host arrays, batches stacked along
        a leading axis), in calls of `steps_per_call` steps, the last one padded; returns
        the losses before each step.

        `arch` is None for a child net; for the supernet, one architecture for every step
        or one per step (shape ``(len(xs), n)``).
        """
        xs, ys = np.asarray(xs), np.asarray(ys)
        if not len(xs):
            return jax.device_put(np.zeros(0, np.float32))
        archs = None if arch is None else np.asarray(arch)
        if archs is not None and archs.ndim == 1:
            archs = np.broadcast_to(archs, (len(xs), len(archs)))
        if len(ys) != len(xs) or (archs is not None and len(archs) != len(xs)):
            given = f"{len(ys)} label batches" + ("" if archs is None else f", {len(archs)} archs")
            raise ValueError(
                f"Trainer.train_steps: {len(xs)} batches of examples but {given}; expected one "
                "of each per step (or one architecture for every step)"
            )
        k = self.steps_per_call
        if k == 1:
            steps = (None if archs is None else archs[i] for i in range(len(xs)))
            return jnp.stack([self.train_step(x, y, a) for x, y, a in zip(xs, ys, steps)])
        losses = []
        for start in range(0, len(xs), k):
            count = min(k, len(xs) - start)
            chunk = _padded(_rows((xs, ys, archs), start, count), k)
            batches = self._split_batch(chunk[:2], xs.shape[1], 1, "train_steps")
            self._leaves, loss = self._train_loop(
                self._leaves, *batches, chunk[2], np.int32(count), self._total_steps
            )
            losses.append(loss if count == k else loss[:count])
        return losses[0] if len(losses) == 1 else jnp.concatenate(losses)

    def _split_batch(self, arrays, batch: int, axis: int, name: str):
        """`arrays` split along their batch `axis` across a data-parallel trainer's devices
        (as they are, else)."""
        if self._mesh is None:
            return arrays
        if batch % self.config.devices:
            raise ValueError(
                f"Trainer.{name}: a batch of {batch} does not split into "
                f"devices={self.config.devices} equal shares"
            )
        return jax.device_put(arrays, split(self._mesh, axis))

    def compile(self, x, y, arch=None) -> None:
        """Compiles the train step that `train_steps` calls, for batches shaped like (x, y);
        the state is left unchanged."""
        before, k = self._leaves, self.steps_per_call
        jax.block_until_ready(self.train_steps(np.stack([x] * k), np.stack([y] * k), arch))
        self._leaves = before

    def evaluate(self, x, y, arch=None, *, batch_size: int = 512) -> tuple[float, float]:
        """Accuracy and mean loss over all of (x, y), in batches of `batch_size`."""
        correct, total_loss, params = 0.0, 0.0, self._first_copies(self._leaves[0])
        for start in range(0, len(x), batch_size):
            hits, loss = self._eval(
                params, x[start : start + batch_size], y[start : start + batch_size], arch
            )
            correct, total_loss = correct + float(hits), total_loss + float(loss)
        return correct / len(x), total_loss / len(x)

    def predict(self, x, arch=None, *, batch_size: int = 512) -> np.ndarray:
        """The predicted class of each example of `x`, in batches of `batch_size`."""
        params = self._first_copies(self._leaves[0])
        parts = [
            self._predict(params, x[start : start + batch_size], arch)
            for start in range(0, len(x), batch_size)
        ]
        return np.concatenate(jax.device_get(parts))


def _rows(arrays, start: int, count: int) -> tuple:
    """Rows ``start:start + count`` of each array (None stays None)."""
    return tuple(None if a is None else a[start : start + count] for a in arrays)


def _padded(arrays, length: int) -> tuple:
    """Each array padded with zero rows to `length` rows (None stays None)."""
    return tuple(a if a is None or len(a) == length else _pad(a, length) for a in arrays)


def _pad(a, length: int):
    return np.concatenate([a, np.zeros((length - len(a), *a.shape[1:]), a.dtype)])
