"""Retraining from scratch: early stopping, cross-validation, test metrics, saved weights."""

import dataclasses
import json

import numpy as np
import pytest

from nas.cli import main
from nas.config import SearchConfig
from nas.data import load_dataset
from nas.export.weights import load_weights
from nas.metrics import classification_report
from nas.retrain import RetrainConfig, fit, retrain
from nas.supernet import child_net
from nas.train import TrainConfig
from search_spaces import nb201

SPACE = nb201(channels=4, cells_per_stage=1)
ARCH = np.array([3, 1, 3, 2, 1, 3])  # convolutions and skips: a network that learns


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_classification_report_matches_counts_by_hand():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 0, 2])
    report = classification_report(y_true, y_pred, num_classes=4)
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["confusion"] == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]
    first = report["per_class"][0]  # predicted 0 twice, once right; two true 0s, one found
    assert (first["precision"], first["recall"], first["support"]) == (0.5, 0.5, 2)
    assert report["per_class"][1]["precision"] == pytest.approx(2 / 3)
    assert report["per_class"][3] == {
        "class": 3,
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "support": 0,
    }


def test_early_stopping_keeps_the_best_epoch(digits):
    config = RetrainConfig(epochs=6, patience=2, train=TrainConfig(learning_rate=0.2))
    trainer, history, best = fit(SPACE, ARCH, digits, config, 0, (digits.x_val, digits.y_val))
    accuracies = [h["val_accuracy"] for h in history]
    assert best == 1 + int(np.argmax(accuracies))
    assert len(history) == min(config.epochs, best + config.patience)
    assert trainer.evaluate(digits.x_val, digits.y_val)[0] == pytest.approx(accuracies[best - 1])


def test_retrain_reports_each_seed_and_folds_and_saves_loadable_weights(digits, tmp_path):
    config = RetrainConfig(epochs=2, patience=0, folds=2, seeds=2, seed=5)
    metrics = retrain(SPACE, ARCH, digits, config, out=tmp_path, progress=False)

    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    assert [run["seed"] for run in metrics["runs"]] == [5, 6]
    accuracies = [run["test"]["accuracy"] for run in metrics["runs"]]
    assert metrics["test"]["accuracy_mean"] == pytest.approx(np.mean(accuracies))
    assert metrics["test"]["accuracy_std"] == pytest.approx(np.std(accuracies, ddof=1))
    assert min(accuracies) > 0.3  # ten classes: chance is 0.1
    assert len(metrics["folds"]) == 2
    assert all(len(run["history"]) == 2 for run in metrics["runs"])
    confusion = np.array(metrics["runs"][0]["test"]["confusion"])
    assert confusion.sum() == len(digits.y_test)

    # The saved weights are the best epoch's: loaded into a fresh network they give the
    # test accuracy that was reported.
    net = child_net(SPACE, ARCH, digits.input_shape, digits.num_classes, seed=99)
    load_weights(net, tmp_path / "seed5" / "weights.msgpack")
    accuracy = float(np.mean(np.argmax(net(digits.x_test), -1) == digits.y_test))
    assert accuracy == pytest.approx(accuracies[0], abs=1e-6)


def test_retrain_options_are_checked():
    with pytest.raises(ValueError, match="folds must be 0 .* got 1"):
        RetrainConfig(folds=1)
    with pytest.raises(ValueError, match="augment='mixup'; valid: none, crop, crop_flip"):
        RetrainConfig(augment="mixup")


def test_augmentation_changes_training_and_is_seeded(digits):
    def train(augment):
        config = RetrainConfig(epochs=1, patience=0, augment=augment)
        return fit(SPACE, ARCH, digits, config, 0, (digits.x_val, digits.y_val))[1][0]

    crop = train("crop")
    assert crop == train("crop")
    assert crop["train_loss"] != train("none")["train_loss"]
    with pytest.raises(ValueError, match="epochs \\(0\\)"):
        RetrainConfig(epochs=0)


def test_nas_retrain_trains_a_runs_best_architecture(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    config = dataclasses.asdict(SearchConfig(space="nb201", channels=4, cells=1))
    (run / "config.json").write_text(json.dumps(config))
    top = [{"arch": [1, 1, 1, 1, 1, 1], "score": 0.9}, {"arch": ARCH.tolist(), "score": 0.8}]
    (run / "results.json").write_text(json.dumps({"space": "nb201", "top": top}))
    flags = ["--rank", "2", "--channels", "4", "--cells", "1", "--epochs", "2", "--no-progress"]

    assert main(["retrain", str(run), *flags, "--devices", "2"]) == 0

    metrics = json.loads((run / "retrain" / "metrics.json").read_text())
    assert metrics["config"]["epochs"] == 2 and len(metrics["runs"]) == 1
    assert metrics["config"]["train"]["devices"] == 2  # batches split across two devices
    assert "seed 0: test accuracy" in capsys.readouterr().out
    assert (run / "retrain" / "seed0" / "weights.msgpack").stat().st_size > 0


@pytest.mark.parametrize(
    "results, message",
    [
        (None, "results.json does not exist"),
        ("{", "results.json is not valid JSON"),
        ('{"top": []}', "no architecture of rank 1"),
        (
            '{"top": [{"arch": [9, 9, 9, 9, 9, 9]}]}',
            "arch[0] (normal cell, node 1, op of input 0) = 9",
        ),
    ],
)
def test_nas_retrain_names_what_is_wrong_with_a_run(tmp_path, capsys, results, message):
    (tmp_path / "config.json").write_text(json.dumps({"space": "nb201"}))
    if results is not None:
        (tmp_path / "results.json").write_text(results)
    assert main(["retrain", str(tmp_path), "--no-progress"]) == 2
    assert message in capsys.readouterr().err
