"""Few-shot weights (one supernet copy per op of the first edge) through a whole search:
checkpointed, resumed exactly, and exported with the copy each architecture was scored with."""

import json
import shutil

import jax
import numpy as np
import pytest
from flax import nnx

from nas.checkpoint import load_supernet
from nas.config import SearchConfig
from nas.experiment import resume_search, run_search
from nas.export import export_run
from nas.export.weights import load_weights
from nas.supernet import child_net

OPTIONS = {
    "space": "nb201",
    "channels": 4,
    "cells": 1,
    "warmup_steps": 6,
    "train_steps": 2,
    "budget": 6,
    "checkpoint_every": 2,
    "few_shot": True,
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("few_shot") / "run"
    run_search(SearchConfig(**OPTIONS, out=str(out)), progress=False)
    return out


def _params(net) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves(nnx.state(net, nnx.Param))]


def test_a_few_shot_search_resumes_to_the_same_weights(finished, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    shutil.rmtree(out / "checkpoints" / str(OPTIONS["budget"]))
    resume_search(out, progress=False)  # from the checkpoint before, replaying the log's tail
    results = [json.loads((d / "results.json").read_text())["top"] for d in (finished, out)]
    assert [e["arch"] for e in results[0]] == [e["arch"] for e in results[1]]
    first_ops = {0: [0, 1, 1, 1, 1, 1], 3: [3, 1, 1, 1, 1, 1]}
    copies = {op: _params(load_supernet(finished, arch)) for op, arch in first_ops.items()}
    for op, arch in first_ops.items():
        for a, b in zip(copies[op], _params(load_supernet(out, arch)), strict=True):
            np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(copies[0], copies[3], strict=True))


def test_each_export_carries_the_copy_its_architecture_was_scored_with(finished, tmp_path):
    exported = export_run(finished, tmp_path / "export", top=3)
    top = json.loads((finished / "results.json").read_text())["top"]
    for (directory, _, with_weights), entry in zip(exported, top[:3], strict=True):
        assert with_weights
        supernet = load_supernet(finished, entry["arch"])
        child = child_net(supernet.space, entry["arch"], supernet.input_shape, supernet.num_classes)
        load_weights(child, directory / "weights.msgpack")
        x = jax.random.normal(jax.random.key(0), (8, *supernet.input_shape))
        np.testing.assert_allclose(
            child(x), supernet(x, np.asarray(entry["arch"], np.int32)), atol=1e-5
        )
