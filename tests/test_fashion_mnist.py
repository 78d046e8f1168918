"""The Fashion-MNIST experiment, run tiny on digits: every contender searched or built,
exported, retrained with one recipe; a rerun reads every step back instead of redoing it."""

import dataclasses
import json
from pathlib import Path

import pytest

from experiments.fashion_mnist import pipeline
from experiments.fashion_mnist.config import QUICK
from experiments.fashion_mnist.contenders import RESNET, resnet
from experiments.fashion_mnist.pipeline import run
from nas.cost import parameters
from nas.space import load_space
from nas.supernet import child_net

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    out = tmp_path_factory.mktemp("fashion_mnist")
    config = dataclasses.replace(QUICK, out=str(out))
    return config, run(config)


def test_every_contender_is_retrained_exported_and_tabled(experiment):
    config, figures = experiment
    out = Path(config.out)
    names = [*config.strategies, "random", "resnet"]
    assert list(figures["contenders"]) == names
    table = (out / "table.md").read_text()
    for name in names:
        f = figures["contenders"][name]
        assert len(f["test_accuracy"]) == config.retrain_seeds
        assert 0.0 <= f["test_mean"] <= 1.0 and f["params"] <= config.max_params
        assert f["flops"] > f["params"]  # every weight is used at least once per example
        folder = out / "export" / name
        genotype = json.loads((folder / "genotype.json").read_text())
        assert genotype["space"] == "nb201" and (folder / "model.py").exists()
        seeds = range(config.seed, config.seed + config.retrain_seeds)
        assert all((folder / f"seed{s}" / "weights.msgpack").exists() for s in seeds)
        runs = json.loads((folder / "metrics.json").read_text())["runs"]
        assert [r["test"]["accuracy"] for r in runs] == pytest.approx(f["test_accuracy"], abs=1e-4)
        assert f"{f['params']:,}" in table
    assert figures["contenders"]["random"]["search_evaluations"] >= 1
    assert (out / "progress.png").stat().st_size > 0


def test_a_rerun_reads_every_step_back(experiment, monkeypatch):
    config, figures = experiment

    def refuse(*args):
        raise AssertionError("a step ran again")

    monkeypatch.setattr(pipeline, "search", refuse)
    monkeypatch.setattr(pipeline, "retrain_seed", refuse)
    assert run(config) == figures


def test_resnet_width_brings_its_parameters_closest_to_the_target():
    target = 20_000
    space, arch, size = resnet(1, target, 1_000_000, (8, 8, 1), 10)
    assert space.to_json(arch)["cells"] == RESNET["cells"]
    narrower = load_space("nb201", channels=space.skeleton.channels - 2, cells_per_stage=1)
    wider = load_space("nb201", channels=space.skeleton.channels + 2, cells_per_stage=1)
    for other in (narrower, wider):
        params = parameters(child_net(other, other.from_json(RESNET), (8, 8, 1), 10, seed=0))
        assert abs(params - target) >= abs(size["params"] - target)
    with pytest.raises(ValueError, match="fits in 100 parameters"):
        resnet(1, target, 100, (8, 8, 1), 10)
