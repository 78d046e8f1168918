"""The compile-once supernet: same function as the child net, no recompile across archs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from nas import cells
from nas.cells import CellStack, ResidualReduction, branch
from nas.compiles import count_compiles
from nas.supernet import child_from_supernet, child_net, supernet
from nas.train import TrainConfig, Trainer
from search_spaces import darts, nb201

SHAPE = (8, 8, 1)


def images(n=6, seed=0):
    return jax.random.normal(jax.random.key(seed), (n, *SHAPE))


def assert_computes_like_its_child_nets(net, space, n_archs, **tolerance):
    """The jitted supernet's logits equal `child_from_supernet`'s for sampled architectures."""
    graphdef, params = nnx.split(net)
    forward = jax.jit(lambda p, x, a: nnx.merge(graphdef, p)(x, a))
    x = images()
    for key in jax.random.split(jax.random.key(2), n_archs):
        arch = space.sample(key)
        child = child_from_supernet(net, arch)
        np.testing.assert_allclose(forward(params, x, arch), child(x), **tolerance)


@pytest.mark.parametrize(
    "tiny_space, scan_edges",
    [
        ("nb201", False),
        ("darts", True),
        ("enas", True),
        # Each layout is checked above on one space; these pairings compile many seconds more.
        pytest.param("nb201", True, marks=pytest.mark.slow),
        pytest.param("darts", False, marks=pytest.mark.slow),
        pytest.param("enas", False, marks=pytest.mark.slow),
    ],
    indirect=["tiny_space"],
)
def test_supernet_and_child_compute_the_same_function(tiny_space, scan_edges):
    net = supernet(tiny_space, SHAPE, 10, seed=1, scan_edges=scan_edges)
    assert_computes_like_its_child_nets(net, tiny_space, 3, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("stacked", [True, False])
def test_scanned_cells_compute_and_differentiate_like_the_child(stacked, monkeypatch):
    """With `scan_cells` each stage's cells run as one scanned cell, whose backward pass reads
    the residuals the scan stacked (small inputs) or recomputes the cell (larger ones): either
    way the loss and gradients of the child net of each architecture, from one program."""
    monkeypatch.setattr(cells, "STACKED_RESIDUALS_MAX_BYTES", 2**20 if stacked else 0)
    space = nb201(channels=4, cells_per_stage=2)
    net = supernet(space, SHAPE, 10, seed=3, scan_cells=True)
    assert [type(b) for b in net.blocks] == [CellStack, ResidualReduction] * 2 + [CellStack]
    program = str(jax.make_jaxpr(lambda a: net(images(8), a))(np.zeros(6, np.int32)))
    assert ("remat" in program) != stacked  # jax.checkpoint's primitive
    # A stack holds the weights the unscanned network of the same seed draws, cell by cell.
    plain = supernet(space, SHAPE, 10, seed=3)
    for cell in range(2):
        np.testing.assert_array_equal(
            net.blocks[0].cells.edges[0].ops[3].w[...][cell],
            plain.blocks[cell].edges[0].ops[3].w[...],
        )
    x, y = images(8), jnp.arange(8) % 10

    def loss(model, *arch):
        return -jnp.mean(jax.nn.log_softmax(model(x, *arch))[jnp.arange(8), y])

    graphdef, params = nnx.split(net)
    step = jax.jit(jax.value_and_grad(lambda p, a: loss(nnx.merge(graphdef, p), a)))
    archs = [np.array([3, 1, 2, 4, 3, 2], np.int32), np.array([2, 3, 3, 1, 0, 3], np.int32)]
    step(params, archs[0])
    with count_compiles() as counter:
        results = [step(params, arch) for arch in archs]
    assert counter.count == 0
    for arch, (value, grads) in zip(archs, results):
        child_value, child_grads = nnx.value_and_grad(loss)(child_from_supernet(net, arch))
        np.testing.assert_allclose(value, child_value, rtol=1e-5)
        np.testing.assert_allclose(
            grads["stem"]["w"][...], child_grads["stem"]["w"][...], rtol=1e-4, atol=1e-6
        )
        # The second cell of the first stage, edge 1<-0: its slice of the stacked weights.
        stacked = grads["blocks"][0]["cells"]["edges"][0]["ops"][int(arch[0])]["w"][...]
        mine = child_grads["blocks"][1]["edges"][0]["ops"][0]["w"][...]
        np.testing.assert_allclose(stacked[1], mine, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_scanned_cells_with_two_inputs_compute_like_the_child():
    """DARTS cells read the last two outputs: a stack carries both, and the first cells of a
    stage, whose inputs differ in shape, stay outside it."""
    space = darts(channels=4, cells_per_stage=3)
    net = supernet(space, SHAPE, 10, seed=1, scan_cells=True)
    stacks = [b.length for b in net.blocks if isinstance(b, CellStack)]
    assert stacks == [2, 2]  # cells 2-3 of stages 2 and 3; stage 1's third cell is alone
    assert_computes_like_its_child_nets(net, space, 2, atol=1e-4)


def test_select_branching_matches_switch_without_conditionals():
    """ "select" runs every op and keeps the chosen one: the same loss and gradients as
    "switch" for the same weights, from a program with no conditional in it."""
    space = nb201(channels=4, cells_per_stage=1)
    x, y = images(8), jnp.arange(8) % 10

    def loss(model, arch):
        return -jnp.mean(jax.nn.log_softmax(model(x, arch))[jnp.arange(8), y])

    def loss_and_grads(branching):
        graphdef, params = nnx.split(supernet(space, SHAPE, 10, seed=1, branching=branching))
        step = jax.jit(
            lambda p, a: jax.value_and_grad(lambda p: loss(nnx.merge(graphdef, p), a))(p)
        )
        hlo = step.lower(params, space.sample(jax.random.key(0))).as_text()
        return step, params, hlo.count("stablehlo.case") + hlo.count("stablehlo.if")

    (switch, params, n_switch), (select, params_select, n_select) = map(
        loss_and_grads, ("switch", "select")
    )
    assert n_switch > 0 and n_select == 0
    for key in jax.random.split(jax.random.key(2), 2):
        arch = space.sample(key)
        (l1, g1), (l2, g2) = switch(params, arch), select(params_select, arch)
        np.testing.assert_allclose(l1, l2, rtol=1e-5)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), g1, g2)


@pytest.mark.parametrize("index", [0, 2])
def test_branch_selects_the_same_value_and_gradient_as_a_switch(index):
    """Both branchings of `nas.cells.branch` (which also picks DARTS's and ENAS's inputs)."""
    branches = [lambda v: v * 0, lambda v: jnp.sin(v), lambda v: v**2]

    def value_and_grad(branching):
        def f(v):
            return jnp.sum(branch(jnp.int32(index), branches, v, branching=branching))

        return jax.value_and_grad(f)(jnp.arange(3.0))

    (v1, g1), (v2, g2) = value_and_grad("switch"), value_and_grad("select")
    np.testing.assert_allclose(v1, v2)
    np.testing.assert_allclose(g1, g2)
    np.testing.assert_allclose(g2, [0, 0, 0] if index == 0 else [0, 2, 4])


def test_unknown_branching_names_the_valid_ones():
    with pytest.raises(ValueError, match="unknown branching 'mask'; valid values: switch, select"):
        supernet(nb201(channels=4, cells_per_stage=1), SHAPE, 10, branching="mask")


def test_child_holds_only_the_chosen_ops():
    space = nb201(channels=4, cells_per_stage=1)
    arch = np.array([3, 0, 0, 3, 0, 0], np.int32)  # conv3x3 on edges 1<-0 and 3<-0
    child, net = child_net(space, arch, SHAPE, 10), supernet(space, SHAPE, 10)

    def count(model):
        return sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))

    # Per stage of c channels (4, 8, 16): the supernet's 6 edges hold conv3x3 and conv1x1
    # (10 c^2 weights each); the child keeps two conv3x3s (9 c^2 each).
    assert count(net) - count(child) == sum(6 * 10 * c * c - 2 * 9 * c * c for c in (4, 8, 16))


def test_gradients_agree_between_supernet_and_child():
    space = nb201(channels=4, cells_per_stage=1)
    net = supernet(space, SHAPE, 10, seed=3)
    arch = np.array([3, 1, 2, 4, 3, 2], np.int32)
    child = child_from_supernet(net, arch)
    x, y = images(8), jnp.arange(8) % 10

    def loss(model, *args):
        logits = model(x, *args)
        return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(8), y])

    g_super = nnx.grad(loss)(net, jnp.asarray(arch))
    g_child = nnx.grad(loss)(child)
    np.testing.assert_allclose(
        g_super["stem"]["w"][...], g_child["stem"]["w"][...], rtol=1e-4, atol=1e-6
    )
    edge_super = g_super["blocks"][0]["edges"][0]["ops"][3]["w"][...]
    edge_child = g_child["blocks"][0]["edges"][0]["ops"][0]["w"][...]
    np.testing.assert_allclose(edge_super, edge_child, rtol=1e-4, atol=1e-6)
    # An op the architecture does not use gets no gradient.
    assert float(jnp.abs(g_super["blocks"][0]["edges"][0]["ops"][2]["w"][...]).max()) == 0.0


def test_no_recompile_across_architectures():
    space = nb201(channels=4, cells_per_stage=1)
    trainer = Trainer(supernet(space, SHAPE, 10), TrainConfig(batch_size=8), 100)
    x, y = np.asarray(images(8)), np.arange(8) % 10
    archs = np.asarray(space.sample(jax.random.key(0), 12))
    trainer.train_step(x, y, archs[0])
    trainer.evaluate(x, y, archs[0])
    with count_compiles() as compiles:
        for arch in archs[1:]:
            trainer.train_step(x, y, arch)
            trainer.evaluate(x, y, arch)
    assert compiles.count == 0
    with count_compiles() as compiles:  # the counter does see compiles
        trainer.evaluate(x[:3], y[:3], arch)
    assert compiles.count == 1


def test_trainers_of_equal_child_nets_share_their_compiled_steps_but_not_their_state():
    space = nb201(channels=4, cells_per_stage=1)
    a, b = np.asarray(space.sample(jax.random.key(3), 2))
    assert not np.array_equal(a, b)
    x, y = np.asarray(images(8)), np.arange(8) % 10
    config = TrainConfig(batch_size=8)
    first, second = (Trainer(child_net(space, a, SHAPE, 10, seed=s), config, 100) for s in (0, 1))
    other = Trainer(child_net(space, b, SHAPE, 10, seed=0), config, 100)
    assert second._train is first._train and second._eval is first._eval
    assert other._train is not first._train
    # The steps a schedule plans are an argument of the step (`nas.schedule`), not compiled in.
    assert Trainer(child_net(space, a, SHAPE, 10), config, 50)._train is first._train
    faster = TrainConfig(batch_size=8, learning_rate=0.1)
    assert Trainer(child_net(space, a, SHAPE, 10), faster, 100)._train is not first._train
    losses = [float(t.train_step(x, y)) for t in (first, second)]
    assert losses[0] != losses[1]  # each its own weights
    trained = jax.tree.leaves(first.params)
    second.train_step(x, y)
    assert all(
        np.array_equal(u, v) for u, v in zip(trained, jax.tree.leaves(first.params), strict=True)
    )


def test_a_trainer_gives_takes_and_restores_its_weights_as_trees():
    space = nb201(channels=4, cells_per_stage=1)
    x, y = np.asarray(images(8)), np.arange(8) % 10
    trainer = Trainer(supernet(space, SHAPE, 10), TrainConfig(batch_size=8), 100)
    arch = np.asarray(space.sample(jax.random.key(0)))
    start = trainer.snapshot()
    before = [np.asarray(p) for p in jax.tree.leaves(trainer.params)]
    loss = float(trainer.train_step(x, y, arch))
    assert not all(
        np.array_equal(u, v) for u, v in zip(before, jax.tree.leaves(trainer.params), strict=True)
    )
    assert isinstance(trainer.params, nnx.State)
    trainer.restore(start)
    assert float(trainer.train_step(x, y, arch)) == loss  # the same weights and momenta again
    trainer.params, trainer.opt_state = trainer.params, trainer.opt_state  # trees round-trip
    with pytest.raises(ValueError, match=r"Trainer.params: .* \(2 leaves given, \d+ expected\)"):
        trainer.params = before[:2]
    with pytest.raises(ValueError, match="Trainer.opt_state: the tree does not have"):
        trainer.opt_state = trainer.params


@pytest.mark.parametrize("steps_per_call", [1, 3])
def test_train_steps_train_as_one_step_at_a_time(steps_per_call):
    """Seven steps in calls of 3 (the last padded), one architecture per step, give the
    losses and weights of seven `train_step` calls; a child net's likewise, with no arch."""
    space = nb201(channels=4, cells_per_stage=1)
    xs = np.asarray(images(7 * 8)).reshape(7, 8, *SHAPE)
    ys = (np.arange(7 * 8) % 10).reshape(7, 8)
    archs = np.asarray(space.sample(jax.random.key(4), 7))
    config = TrainConfig(batch_size=8)
    for arch in (archs, None):

        def make(k, arch=arch):
            net = (
                supernet(space, SHAPE, 10)
                if arch is not None
                else child_net(space, archs[0], SHAPE, 10)
            )
            return Trainer(net, config, 100, steps_per_call=k)

        one, many = make(1), make(steps_per_call)
        expected = [
            float(one.train_step(xs[i], ys[i], None if arch is None else arch[i])) for i in range(7)
        ]
        losses = many.train_steps(xs, ys, arch)
        np.testing.assert_allclose(losses, expected, rtol=1e-5)
        for u, v in zip(jax.tree.leaves(one.params), jax.tree.leaves(many.params), strict=True):
            np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-6)


def test_train_steps_take_one_architecture_for_every_step_and_compile_once():
    space = nb201(channels=4, cells_per_stage=1)
    xs = np.asarray(images(5 * 8)).reshape(5, 8, *SHAPE)
    ys = (np.arange(5 * 8) % 10).reshape(5, 8)
    a, b = np.asarray(space.sample(jax.random.key(5), 2))
    trainer = Trainer(supernet(space, SHAPE, 10), TrainConfig(batch_size=8), 100, steps_per_call=2)
    start = trainer.snapshot()
    tiled = trainer.train_steps(xs, ys, np.stack([a] * 5))
    trainer.restore(start)
    with count_compiles() as compiles:
        np.testing.assert_array_equal(trainer.train_steps(xs, ys, a), tiled)
        assert trainer.train_steps(xs[:1], ys[:1], b).shape == (1,)
        assert trainer.train_steps(xs[:0], ys[:0], b).shape == (0,)
    assert compiles.count == 0
    with pytest.raises(ValueError, match="5 batches of examples but 4 label batches, 2 archs"):
        trainer.train_steps(xs, ys[:4], np.stack([a, b]))
    with pytest.raises(ValueError, match="steps_per_call=0; expected at least 1"):
        Trainer(supernet(space, SHAPE, 10), TrainConfig(batch_size=8), 100, steps_per_call=0)


def test_supernet_needs_an_architecture_and_images():
    space = nb201(channels=4, cells_per_stage=1)
    with pytest.raises(ValueError, match="needs an architecture"):
        supernet(space, SHAPE, 10)(images())
    with pytest.raises(
        ValueError, match=r"needs images \(H, W, C\); got examples of shape \(64,\)"
    ):
        supernet(space, (64,), 10)


def test_reduction_by_the_normal_cell_and_npz_data(tmp_path):
    """A user's space with one cell type reused for reductions, trained on .npz images."""
    from nas.data import load_npz
    from nas.evaluators import SharedWeightsEvaluator
    from nas.space import SearchSpace, Skeleton, choice_cell

    cell = choice_cell(2, ("conv3x3", "max_pool3x3", "skip_connect"), output="loose_ends")
    space = SearchSpace("mine", {"normal": cell}, Skeleton(4, 1, 2, reduction="cell"))
    rng = np.random.default_rng(0)
    path = tmp_path / "mine.npz"
    np.savez(path, x_train=rng.normal(size=(96, 6, 6, 2)), y_train=rng.integers(0, 3, 96))
    data = load_npz(path)
    net = supernet(space, data.input_shape, data.num_classes)
    arch = space.sample(jax.random.key(0))
    x = data.x_val[:5]
    np.testing.assert_allclose(net(x, arch), child_from_supernet(net, arch)(x), atol=1e-5)
    evaluator = SharedWeightsEvaluator(
        space, data, train_steps=2, warmup_steps=2, config=TrainConfig(batch_size=16)
    )
    assert 0.0 <= evaluator.evaluate(arch).score <= 1.0
