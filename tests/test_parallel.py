"""Data parallelism over two CPU devices (the test session makes them: conftest)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import TINY
from flax import nnx

from nas.data import load_digits
from nas.parallel import use_cpu_devices
from nas.supernet import child_net, supernet
from nas.train import TrainConfig, Trainer, cross_entropy
from search_spaces import nb201


@pytest.fixture(scope="module")
def setup():
    data = load_digits(seed=0)
    space = nb201(**TINY)
    arch = np.asarray(space.sample(jax.random.key(3), 1))[0]
    return data, space, arch


def _half_batch_step(trainer):
    """One device's step whose loss is the mean of the two half-batches' own losses (batch
    norm over each half), as two devices compute it."""

    def step(leaves, x, y, arch):
        params, opt_state = (jax.tree.unflatten(d, s) for d, s in zip(trainer._defs, leaves))

        def loss_fn(p):
            net, n = nnx.merge(trainer.graphdef, p), len(x) // 2
            halves = [(x[:n], y[:n]), (x[n:], y[n:])]
            return sum(cross_entropy(net(xh, arch), yh) for xh, yh in halves) / 2

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = trainer.tx.update(grads, opt_state, params, total_steps=10)
        params = optax.apply_updates(params, updates)
        return (jax.tree.leaves(params), jax.tree.leaves(opt_state)), loss

    return jax.jit(step)


def test_two_devices_train_as_half_batches_with_their_own_batch_norm(setup):
    data, space, arch = setup
    x, y = data.x_train[:16], data.y_train[:16]
    two = Trainer(supernet(space, data.input_shape, data.num_classes), TrainConfig(devices=2), 10)
    one = Trainer(supernet(space, data.input_shape, data.num_classes), TrainConfig(), 10)
    whole = Trainer(supernet(space, data.input_shape, data.num_classes), TrainConfig(), 10)
    reference = _half_batch_step(one)
    losses = []
    for _ in range(3):
        losses.append(loss_two := two.train_step(x, y, arch))
        one._leaves, loss_one = reference(one._leaves, x, y, arch)
    np.testing.assert_allclose(loss_two, loss_one, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(two.params), jax.tree.leaves(one.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    # Scores and predictions come from one device's copy of the weights.
    assert two.evaluate(data.x_val, data.y_val, arch) == pytest.approx(
        one.evaluate(data.x_val, data.y_val, arch), rel=1e-5
    )
    np.testing.assert_array_equal(two.predict(data.x_val, arch), one.predict(data.x_val, arch))
    # Not what one device computes on the whole batch: batch norm sees half-batches.
    assert float(whole.train_step(x, y, arch)) != pytest.approx(float(losses[0]), rel=1e-3)


def test_two_devices_train_a_loop_of_steps_as_one_step_at_a_time(setup):
    data, space, arch = setup
    xs, ys = data.x_train[:48].reshape(3, 16, 8, 8, 1), data.y_train[:48].reshape(3, 16)
    config = TrainConfig(devices=2)
    one, loop = (
        Trainer(supernet(space, data.input_shape, data.num_classes), config, 10, steps_per_call=k)
        for k in (1, 2)
    )
    expected = [float(one.train_step(x, y, arch)) for x, y in zip(xs, ys)]
    np.testing.assert_allclose(loop.train_steps(xs, ys, arch), expected, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(loop.params), jax.tree.leaves(one.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="train_steps: a batch of 7 does not split"):
        loop.train_steps(xs[:, :7], ys[:, :7], arch)


def test_a_data_parallel_trainer_gives_first_device_trees_and_takes_any(setup):
    data, space, arch = setup
    net = child_net(space, arch, data.input_shape, data.num_classes)
    trainer = Trainer(net, TrainConfig(devices=2), 10)
    first = jax.devices()[0]
    assert all(a.devices() == {first} for a in jax.tree.leaves(trainer.params))
    assert all(a.devices() == {first} for a in jax.tree.leaves(trainer.opt_state))
    # Host arrays go in, are copied to both devices, and train as before.
    params = jax.tree.map(np.asarray, trainer.params)
    trainer.params = jax.tree.map(lambda a: a * 0.5, params)
    assert all(len(a.devices()) == 2 for a in trainer._leaves[0])
    np.testing.assert_allclose(jax.tree.leaves(trainer.params)[0], jax.tree.leaves(params)[0] * 0.5)
    before = trainer.snapshot()
    trainer.train_step(data.x_train[:8], data.y_train[:8])
    trainer.restore(before)
    np.testing.assert_array_equal(
        jax.tree.leaves(trainer.params)[0], jax.tree.leaves(params)[0] * 0.5
    )


def test_batches_and_devices_that_do_not_fit_are_refused(setup):
    data, space, arch = setup
    with pytest.raises(ValueError, match="batch_size=63 does not split into devices=2"):
        TrainConfig(batch_size=63, devices=2)
    with pytest.raises(ValueError, match="devices must be positive"):
        TrainConfig(devices=0)
    net = child_net(space, arch, data.input_shape, data.num_classes)
    with pytest.raises(ValueError, match=r"devices=4, but JAX sees 2 cpu device\(s\)"):
        Trainer(net, TrainConfig(devices=4), 10)
    trainer = Trainer(net, TrainConfig(devices=2), 10)
    with pytest.raises(ValueError, match="a batch of 7 does not split into devices=2"):
        trainer.train_step(data.x_train[:7], data.y_train[:7])


def test_cpu_devices_are_made_before_the_backend_starts():
    jnp.ones(1).block_until_ready()  # the backend has started (with conftest's two)
    use_cpu_devices(2)  # as many as there are: nothing to do
    with pytest.raises(RuntimeError, match=r"already started with 2 device\(s\).*--devices 3"):
        use_cpu_devices(3)
