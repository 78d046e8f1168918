"""The cosine schedule whose length is an argument of the update (`nas.schedule`), and the
optimizers built on it."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from nas.compiles import count_compiles
from nas.schedule import scale_by_cosine
from nas.supernet import supernet
from nas.train import TrainConfig, Trainer, make_optimizer
from search_spaces import nb201


def _run(tx, steps: int, **extra) -> list[np.ndarray]:
    """The updates of `tx` over `steps` steps of fixed random gradients."""
    params = {"w": jnp.ones((3, 4)), "b": jnp.arange(5.0)}
    state, out = tx.init(params), []
    for k in range(steps):
        grads = jax.tree.map(lambda a, k=k: jax.random.normal(jax.random.key(k), a.shape), params)
        updates, state = tx.update(grads, state, params, **extra)
        out.append(np.concatenate([np.ravel(u) for u in jax.tree.leaves(updates)]))
    return out


@pytest.mark.parametrize("total", [1, 4, 9])
def test_the_schedule_takes_optax_cosine_values_past_its_end_too(total):
    ours = _run(scale_by_cosine(0.05), total + 3, total_steps=total)
    reference = _run(
        optax.scale_by_learning_rate(optax.cosine_decay_schedule(0.05, total)), total + 3
    )
    np.testing.assert_array_equal(np.stack(ours), np.stack(reference))
    assert not np.any(ours[-1])  # decayed to zero, and held there


def test_a_schedule_of_no_steps_spans_one():
    ours = _run(scale_by_cosine(0.05), 2, total_steps=0)
    reference = _run(optax.scale_by_learning_rate(optax.cosine_decay_schedule(0.05, 1)), 2)
    np.testing.assert_array_equal(np.stack(ours), np.stack(reference))


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_the_optimizers_equal_optax_own_with_the_same_state(optimizer):
    lr = optax.cosine_decay_schedule(0.05, 6)
    core = optax.sgd(lr, momentum=0.9, nesterov=True) if optimizer == "sgd" else optax.adam(lr)
    reference = optax.chain(optax.clip_by_global_norm(5.0), optax.add_decayed_weights(3e-4), core)
    ours = make_optimizer(TrainConfig(optimizer=optimizer))
    np.testing.assert_array_equal(
        np.stack(_run(ours, 8, total_steps=6)), np.stack(_run(reference, 8))
    )
    params = {"w": jnp.ones(2)}
    # The same tree as before the schedule became an argument: older checkpoints restore.
    assert jax.tree.structure(ours.init(params)) == jax.tree.structure(reference.init(params))


def test_trainers_planning_different_numbers_of_steps_share_one_program_and_keep_their_plans():
    space = nb201(channels=4, cells_per_stage=1)
    x, y = np.random.default_rng(0).random((8, 8, 8, 1), np.float32), np.arange(8) % 10
    arch = space.validate(space.sample(jax.random.key(0)))
    short = Trainer(supernet(space, (8, 8, 1), 10), TrainConfig(batch_size=8), 2)
    long = Trainer(supernet(space, (8, 8, 1), 10), TrainConfig(batch_size=8), 2000)
    lowered = [
        t._train.lower(t._leaves, x, y, arch, t._total_steps).as_text() for t in (short, long)
    ]
    assert lowered[0] == lowered[1]  # what the persistent compilation cache keys on
    short.train_step(x, y, arch)
    with count_compiles() as compiles:
        long.train_step(x, y, arch)
    assert compiles.count == 0
    short.train_step(x, y, arch)
    long.train_step(x, y, arch)
    moved = []
    for trainer in (short, long):  # a third step: past the short plan's end, its rate is zero
        before = [np.asarray(p) for p in jax.tree.leaves(trainer.params)]
        trainer.train_step(x, y, arch)
        after = jax.tree.leaves(trainer.params)
        moved.append(any(not np.array_equal(u, v) for u, v in zip(before, after, strict=True)))
    assert moved == [False, True]
