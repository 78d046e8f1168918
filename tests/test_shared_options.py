"""The shared-weights evaluator's options: warm-up sampling, write-back, scoring data."""

import jax
import numpy as np
import pytest
from flax import nnx

from nas.data import load_digits
from nas.evaluators import SharedWeightsEvaluator
from nas.evaluators.paths import warmup_paths
from nas.supernet import child_from_supernet
from nas.train import TrainConfig
from search_spaces import darts, nb201


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def evaluator(digits, **options):
    space = nb201(channels=4, cells_per_stage=1)
    config = TrainConfig(batch_size=32)
    return SharedWeightsEvaluator(
        space, digits, train_steps=3, warmup_steps=4, config=config, **options
    )


def leaves(e):
    return [np.asarray(x) for x in jax.tree.leaves(e.trainer.params)]


@pytest.mark.parametrize("space", [nb201(), darts()], ids=["nb201", "darts"])
def test_fair_paths_train_every_choice_equally_often(space):
    n = 23
    paths = warmup_paths(space, jax.random.key(0), n, "fair")
    assert paths.shape == (n, space.n_decisions) and paths.dtype == np.int32
    for column, size in zip(paths.T, space.cardinalities):
        counts = np.bincount(column, minlength=size)
        assert len(counts) == size and counts.max() - counts.min() <= 1
    space.validate(paths[0])


def test_uniform_paths_are_the_spaces_samples():
    space, key = nb201(), jax.random.key(3)
    np.testing.assert_array_equal(warmup_paths(space, key, 5), space.sample(key, 5))


def test_an_unknown_sampling_is_refused():
    with pytest.raises(ValueError, match="unknown warm-up sampling 'fiar'.*uniform"):
        warmup_paths(nb201(), jax.random.key(0), 3, "fiar")


def test_without_write_back_a_path_is_scored_as_with_it_and_the_weights_stay(digits):
    kept, dropped = evaluator(digits), evaluator(digits, write_back=False)
    kept.warmup(), dropped.warmup()
    arch = kept.space.sample(jax.random.key(1))
    before = leaves(dropped)
    assert dropped.evaluate(arch).score == kept.evaluate(arch).score
    for a, b in zip(before, leaves(dropped)):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(before, leaves(kept)))


def test_replay_without_write_back_moves_the_batches_on_only(digits):
    live, resumed = evaluator(digits, write_back=False), evaluator(digits, write_back=False)
    live.warmup(), resumed.warmup()
    first, second = (live.space.sample(k) for k in jax.random.split(jax.random.key(2)))
    live.evaluate(first)
    resumed.replay(first)
    assert resumed.stream.state() == live.stream.state()
    assert resumed.evaluate(second).score == live.evaluate(second).score


def test_score_samples_scores_the_first_validation_examples(digits):
    e = evaluator(digits, score_samples=50)
    arch = e.space.validate(e.space.sample(jax.random.key(4)))
    accuracy, _ = e.trainer.evaluate(digits.x_val[:50], digits.y_val[:50], arch)
    assert e.score(arch) == accuracy
    assert round(accuracy * 50) == accuracy * 50  # a count out of 50


def test_few_shot_copies_train_apart_after_the_split(digits):
    # Scored by loss, which moves with any change of the weights (accuracy can tie).
    split = evaluator(digits, few_shot=True, score_by="loss")
    shared = evaluator(digits, score_by="loss")
    split.warmup(), shared.warmup()
    a = np.array([3, 3, 3, 3, 3, 3], np.int32)  # conv3x3 on the first edge
    b = np.array([2, 3, 3, 3, 3, 3], np.int32)  # conv1x1 there: another copy
    before = split.score(b), shared.score(b)
    split.evaluate(a), shared.evaluate(a)
    assert split.score(b) == before[0]  # training a's copy left b's alone
    assert shared.score(b) != before[1]  # one supernet: training a moved b's weights too


def test_few_shot_state_keeps_every_copy(digits):
    e = evaluator(digits, few_shot=True)
    e.warmup()
    archs = [np.array([op, 3, 1, 3, 1, 3], np.int32) for op in range(5)]
    e.evaluate(archs[1]), e.evaluate(archs[4])
    arrays, meta = e.state()
    assert len(arrays["shards"]) == 5
    scores = [e.score(a) for a in archs]
    restored = evaluator(digits, few_shot=True)
    restored.load_state(arrays, meta)
    assert [restored.score(a) for a in archs] == scores


def test_score_by_loss_is_the_negative_validation_loss(digits):
    e = evaluator(digits, score_by="loss")
    arch = e.space.validate(e.space.sample(jax.random.key(5)))
    _, loss = e.trainer.evaluate(digits.x_val, digits.y_val, arch)
    assert e.score(arch) == -loss < 0
    with pytest.raises(ValueError, match="unknown score_by 'acc'"):
        evaluator(digits, score_by="acc")


def test_with_scanned_cells_the_score_is_the_child_nets_accuracy(digits):
    """A supernet whose stages run as scanned cells trains and scores an architecture, and the
    child net taken from its weights has that validation accuracy."""
    config = TrainConfig(batch_size=32)
    e = SharedWeightsEvaluator(
        nb201(channels=4, cells_per_stage=2),
        digits,
        train_steps=3,
        warmup_steps=4,
        config=config,
        scan_cells=True,
    )
    e.warmup()
    arch = e.space.sample(jax.random.key(1))
    score = e.evaluate(arch).score
    child = child_from_supernet(nnx.merge(e.trainer.graphdef, e.trainer.params), arch)
    predicted = np.argmax(child(digits.x_val), -1)
    assert score == pytest.approx(np.mean(predicted == digits.y_val))
