"""The search loop, the evaluators and the run directory, on tiny spaces and digits."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nas.data import load_digits
from nas.evaluators import EvalResult, SharedWeightsEvaluator, StandaloneEvaluator
from nas.rundir import RunDir
from nas.search import search, top
from nas.strategies import RandomSearch, RegularizedEvolution
from nas.train import TrainConfig
from search_spaces import nb201

SMALL = TrainConfig(batch_size=32)


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.fixture(scope="module")
def space():
    return nb201(channels=4, cells_per_stage=1)


def shared(space, digits, seed=0):
    return SharedWeightsEvaluator(
        space,
        digits,
        train_steps=3,
        warmup_steps=10,
        config=SMALL,
        planned_evaluations=8,
        seed=seed,
    )


def test_seeded_search_gives_the_same_results_twice(space, digits):
    runs = [
        search(
            space,
            RegularizedEvolution(space, population_size=4, tournament_size=2),
            shared(space, digits),
            budget=8,
            seed=5,
        )
        for _ in range(2)
    ]
    assert [r.arch for r in runs[0]] == [r.arch for r in runs[1]]
    assert [r.score for r in runs[0]] == [r.score for r in runs[1]]
    assert all(0.0 <= r.score <= 1.0 for r in runs[0])


def test_shared_weights_stay_in_the_supernet(space, digits):
    evaluator = shared(space, digits)
    arch = np.array([3, 3, 3, 3, 3, 3], np.int32)
    first = evaluator.evaluate(arch).score
    for _ in range(5):
        evaluator.evaluate(arch)
    assert evaluator.evaluate(arch).score > first  # it kept learning across evaluations


def test_standalone_evaluator_learns(space, digits):
    result = StandaloneEvaluator(space, digits, epochs=2, config=SMALL).evaluate(
        np.array([3, 3, 3, 3, 3, 3], np.int32)
    )
    assert result.ok and result.score > 0.3  # chance is 0.1
    assert result.steps == 2 * (len(digits.x_train) // 32)


class Flaky:
    """An evaluator that fails on some architectures, as a diverging child would."""

    def __init__(self, space):
        self.space = space

    def evaluate(self, arch):
        if arch[0] == 0:
            raise FloatingPointError("loss is nan")
        if arch[0] == 1:
            return EvalResult(float("nan"), 3, 0.0, "training loss nan")
        return EvalResult(float(arch.sum()), 3, 0.0)


def test_failures_are_logged_told_as_worst_and_the_search_goes_on(space, tmp_path):
    run = RunDir(tmp_path / "run", {"test": True})
    records = search(
        space, RandomSearch(space), Flaky(space), budget=40, seed=0, batch=4, run_dir=run
    )
    run.close()
    assert len(records) == 40
    failed = [r for r in records if r.error]
    assert failed and all(math.isnan(r.score) for r in failed)
    assert any("FloatingPointError: loss is nan" in r.error for r in failed)
    lines = [json.loads(x) for x in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    lines = [x for x in lines if x["event"] == "eval"]
    assert [x["index"] for x in lines] == list(range(40))
    assert all(x["score"] is None for x in lines if x["error"])
    best = top(records, 3)
    assert all(not math.isnan(r.score) for r in best)
    assert best[0].score == max(r.score for r in records if not math.isnan(r.score))


def test_repeated_architectures_are_not_trained_again(space):
    calls = []

    class Counting(Flaky):
        def evaluate(self, arch):
            calls.append(tuple(arch))
            return EvalResult(1.0, 3, 0.0)

    tiny = nb201(channels=4, cells_per_stage=1)
    records = search(tiny, RandomSearch(tiny), Counting(tiny), budget=300, seed=0, batch=10)
    cached = [r for r in records if r.cached]
    assert len(records) == 300
    assert cached and len(calls) == 300 - len(cached)
    assert len({tiny.key(np.array(c)) for c in calls}) == len(calls)


def test_run_dir_refuses_to_mix_searches(tmp_path):
    run = RunDir(tmp_path, {"a": 1})
    run.log("eval", index=0)
    run.close()
    with pytest.raises(FileExistsError, match="already holds a search"):
        RunDir(tmp_path, {"a": 2})
    assert (tmp_path / "events.jsonl").read_text().count("\n") == 1


def test_a_diverging_child_does_not_poison_the_shared_weights(space, digits):
    evaluator = shared(space, digits)
    arch = np.array([3, 3, 3, 3, 3, 3], np.int32)
    evaluator.evaluate(arch)
    before = evaluator.trainer.params
    trainer_steps = evaluator.trainer.train_steps

    def diverge(xs, ys, arch):
        trainer_steps(xs, ys, arch)
        evaluator.trainer.params = jax.tree.map(lambda p: p * np.nan, evaluator.trainer.params)
        return jnp.full(len(xs), np.nan)

    evaluator.trainer.train_steps = diverge
    result = evaluator.evaluate(arch)
    assert not result.ok and "training loss nan" in result.error
    for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(evaluator.trainer.params)):
        assert (np.asarray(a) == np.asarray(b)).all()


@pytest.mark.parametrize("asynchronous", [False, True])
def test_stop_ends_a_search_early_and_returns_what_was_asked(space, asynchronous):
    asked = []

    def stop():
        return len(asked) >= 3

    class Counting:
        def evaluate(self, arch):
            asked.append(arch)
            return EvalResult(float(np.sum(arch)), 0, 0.0)

    records = search(
        space, RandomSearch(space), Counting(), budget=20, stop=stop, asynchronous=asynchronous
    )
    assert len(records) == 3 and [r.index for r in records] == [0, 1, 2]
