"""The ranking study's ground truth: architectures that cover the quality range, cached runs."""

import json
from collections import Counter

import numpy as np
import pytest

from experiments import ground_truth
from experiments.cache import ResultCache
from experiments.ground_truth import Standalone, covering_archs, live_parametric_ops
from nas.data import load_digits
from search_spaces import nb201


def test_live_parametric_ops_counts_only_convolutions_that_reach_the_output():
    space = nb201()
    assert live_parametric_ops(space, [3, 3, 3, 3, 3, 3]) == 6
    assert live_parametric_ops(space, [3, 3, 3, 0, 0, 0]) == 0  # node 3 gets nothing
    assert live_parametric_ops(space, [2, 0, 0, 1, 0, 0]) == 0  # 3 <- skip(0); node 1 is dead
    assert live_parametric_ops(space, [0, 0, 0, 2, 0, 0]) == 1


def test_covering_archs_are_distinct_and_spread_over_the_range():
    space = nb201()
    archs = covering_archs(space, 21, seed=0)
    assert len({space.key(a) for a in archs}) == 21
    counts = Counter(live_parametric_ops(space, a) for a in archs)
    assert sorted(counts) == list(range(7))  # none to six live convolutions
    assert max(counts.values()) <= 4  # 3 from each group; the rarest has too few to give 3


def test_stand_alone_runs_are_cached_and_reused(tmp_path, monkeypatch):
    space, data = nb201(channels=4, cells_per_stage=1), load_digits()
    archs = covering_archs(space, 2, seed=0)
    how, cache = Standalone(epochs=1, batch_size=128, seeds=2), tmp_path / "truth.json"
    first = ground_truth.standalone_accuracies(space, data, archs, how, cache)
    assert first.shape == (2, 2) and np.all((first >= 0) & (first <= 1))
    assert len(json.loads(cache.read_text())["results"]) == 4

    def refuse(*args, **kwargs):
        raise AssertionError("a cached run was trained again")

    monkeypatch.setattr(ground_truth, "StandaloneEvaluator", refuse)
    np.testing.assert_array_equal(
        ground_truth.standalone_accuracies(space, data, archs, how, cache), first
    )
    with pytest.raises(ValueError, match="truth.json holds results for"):
        ground_truth.standalone_accuracies(space, data, archs, Standalone(epochs=2), cache)


def test_a_result_cache_survives_a_reopen_and_keeps_its_header(tmp_path):
    path = tmp_path / "c.json"
    cache = ResultCache(path, {"steps": 3})
    cache.put("a", {"scores": [0.5]})
    again = ResultCache(path, {"steps": 3})
    assert "a" in again and again["a"] == {"scores": [0.5]}
    with pytest.raises(ValueError, match="holds results for"):
        ResultCache(path, {"steps": 4})
