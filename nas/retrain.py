"""Retraining an architecture from scratch at full size, with the test split touched once.

`retrain` trains the architecture's own network (`nas.supernet.child_net`) for up to `epochs`
epochs on the training split, keeps the weights of the epoch with the best validation accuracy
and stops early after `patience` epochs without improvement. Optionally it first estimates the
accuracy by k-fold cross-validation over training plus validation data (for small datasets,
where one validation split is noisy). Then it reports accuracy, per-class precision, recall and
F1 and the confusion matrix on the test split, and writes into its output directory:

    metrics.json     {"config", "runs": [{"seed", "history", "best_epoch", "test"}], "test",
                      "folds"}; "test" holds the mean and std over seeds of the test accuracy
    seed{S}/weights.msgpack   each seed's trained parameters, in the format of an export
                              (`nas.export.weights`), so an exported model module loads them
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
from flax import nnx
from tqdm import tqdm

from nas.data import AUGMENTATIONS, BatchStream, Dataset, augment
from nas.export.weights import save_weights
from nas.metrics import classification_report
from nas.rundir import read_json, write_json
from nas.space import SearchSpace
from nas.supernet import child_net
from nas.train import TrainConfig, Trainer, loop_length

# Training accuracy per epoch is measured on at most this many training examples.
TRAIN_EVAL_EXAMPLES = 10_000


@dataclasses.dataclass(frozen=True)
class RetrainConfig:
    """How to retrain.

    Args:
      epochs: the most passes over the training split.
      patience: stop after this many epochs without a better validation accuracy (0: never).
      folds: k of a k-fold cross-validation before the final training (0: none).
      seeds: train this many times, with seeds `seed`, `seed + 1`, ...
      seed: the first seed (weights, batch order and augmentation).
      augment: training-batch augmentation, one of `nas.data.AUGMENTATIONS`.
      train: optimizer, learning rate, schedule and batch size.
    """

    epochs: int = 30
    patience: int = 5
    folds: int = 0
    seeds: int = 1
    seed: int = 0
    augment: str = "none"
    train: TrainConfig = TrainConfig()

    def __post_init__(self):
        if self.epochs < 1 or self.seeds < 1 or self.patience < 0:
            raise ValueError(
                f"retrain: epochs ({self.epochs}) and seeds ({self.seeds}) must be at least 1, "
                f"patience ({self.patience}) at least 0"
            )
        if self.folds == 1 or self.folds < 0:
            raise ValueError(f"retrain: folds must be 0 (none) or at least 2, got {self.folds}")
        if self.augment not in AUGMENTATIONS:
            raise ValueError(
                f"retrain: augment={self.augment!r}; valid: {', '.join(AUGMENTATIONS)}"
            )


def retrain(
    space: SearchSpace,
    arch,
    data: Dataset,
    config: RetrainConfig = RetrainConfig(),
    *,
    out: str | Path | None = None,
    progress: bool = True,
) -> dict:
    """Retrains `arch` of `space` on `data`; returns (and writes to `out`) the metrics."""
    arch = space.validate(arch)
    folds = [] if not config.folds else cross_validate(space, arch, data, config, progress)
    runs = []
    for seed in range(config.seed, config.seed + config.seeds):
        trainer, history, best = fit(
            space, arch, data, config, seed, (data.x_val, data.y_val), progress
        )
        predicted = trainer.predict(data.x_test)
        test = classification_report(data.y_test, predicted, data.num_classes)
        runs.append({"seed": seed, "history": history, "best_epoch": best, "test": test})
        if out is not None:
            path = Path(out) / f"seed{seed}" / "weights.msgpack"
            path.parent.mkdir(parents=True, exist_ok=True)
            save_weights(nnx.merge(trainer.graphdef, trainer.params), path)
    accuracies = [run["test"]["accuracy"] for run in runs]
    metrics = {
        "config": _jsonable(config),
        "runs": runs,
        "test": {"accuracy_mean": float(np.mean(accuracies)), "accuracy_std": _std(accuracies)},
        "folds": folds,
    }
    if out is not None:
        write_json(Path(out) / "metrics.json", metrics)
    return metrics


def fit(space, arch, data: Dataset, config: RetrainConfig, seed: int, val, progress=False):
    """Trains a fresh network on the training split with early stopping on `val` = (x, y).

    Returns:
      The trainer holding the best epoch's weights, the history (one dict per epoch: train
      loss and accuracy, validation loss and accuracy), and the best epoch (1-based).
    """
    net = child_net(space, arch, data.input_shape, data.num_classes, seed=seed)
    batch = config.train.batch_size
    steps = max(len(data.x_train) // batch, 1)
    trainer = Trainer(net, config.train, config.epochs * steps, steps_per_call=loop_length(steps))
    stream = BatchStream(data.x_train, data.y_train, batch, seed=seed)
    shifts = np.random.default_rng([seed, 1])  # the augmentation's draws, apart from the order
    x_seen, y_seen = data.x_train[:TRAIN_EVAL_EXAMPLES], data.y_train[:TRAIN_EVAL_EXAMPLES]
    history, best, best_params = [], 0, None
    bar = tqdm(range(1, config.epochs + 1), desc=f"retrain seed {seed}", disable=not progress)
    for epoch in bar:
        losses = []
        for xs, ys in stream.chunks(steps, trainer.steps_per_call):
            xs = np.stack([augment(x, shifts, config.augment) for x in xs])
            losses.append(trainer.train_steps(xs, ys))
        train_loss = float(np.mean(np.concatenate(losses)))
        train_accuracy, _ = trainer.evaluate(x_seen, y_seen)
        val_accuracy, val_loss = trainer.evaluate(*val)
        history.append(
            {
                "epoch": epoch,
                "train_loss": train_loss,
                "train_accuracy": train_accuracy,
                "val_loss": val_loss,
                "val_accuracy": val_accuracy,
            }
        )
        bar.set_postfix(val=f"{val_accuracy:.4f}", loss=f"{train_loss:.3f}")
        if not np.isfinite(train_loss):
            raise FloatingPointError(
                f"retrain seed {seed}: the training loss is {train_loss} at epoch {epoch}; "
                "lower the learning rate"
            )
        if best == 0 or val_accuracy > history[best - 1]["val_accuracy"]:
            best, best_params = epoch, trainer.params
        elif config.patience and epoch - best >= config.patience:
            break
    trainer.params = best_params
    return trainer, history, best


def cross_validate(space, arch, data: Dataset, config: RetrainConfig, progress=False) -> list:
    """k-fold cross-validation over training plus validation data; one dict per fold."""
    x = np.concatenate([data.x_train, data.x_val])
    y = np.concatenate([data.y_train, data.y_val])
    order = np.random.default_rng(config.seed).permutation(len(x))
    folds = []
    for k, held in enumerate(np.array_split(order, config.folds)):
        kept = np.setdiff1d(order, held)
        fold_data = dataclasses.replace(
            data, x_train=x[kept], y_train=y[kept], x_val=x[held], y_val=y[held]
        )
        _, history, best = fit(
            space, arch, fold_data, config, config.seed, (x[held], y[held]), progress
        )
        folds.append({"fold": k, "best_epoch": best, **history[best - 1]})
    return folds


def retrain_source(source, *, rank: int = 1, channels=None, cells=None):
    """The architecture a `nas retrain SOURCE` trains, in its space at the size to train it.

    Args:
      source: a run directory (its `rank`-th best architecture, from results.json) or an
        export (a genotype.json, or the directory holding one).
      rank: which of a run's top architectures, 1 for the best.
      channels, cells: the network's size; None takes the space's own default (full size).

    Returns:
      ``(space, arch, dataset)``: the dataset the run searched on, None for an export.

    Raises:
      FileNotFoundError, ValueError: naming the file and what is wrong with it.
    """
    from nas.experiment import read_config
    from nas.export import load_architecture
    from nas.space import load_space

    source = Path(source)
    genotype = source if source.is_file() else source / "genotype.json"
    if genotype.exists():
        exported = load_architecture(genotype)
        spec, data = read_json(genotype)["space_spec"], None
        arch = exported.arch
    else:
        config = read_config(source)
        spec, data = config.space, config.dataset
        arch = _ranked_architecture(source / "results.json", rank)
    space = load_space(spec, channels=channels, cells_per_stage=cells)
    return space, space.validate(arch), data


def _ranked_architecture(path: Path, rank: int) -> list:
    results = read_json(path, "written when the search ends; `nas resume` finishes it")
    top = results.get("top")
    if not isinstance(top, list) or not 1 <= rank <= len(top):
        count = len(top) if isinstance(top, list) else 0
        raise ValueError(f"{path}: no architecture of rank {rank} ('top' holds {count})")
    entry = top[rank - 1]
    if not isinstance(entry, dict) or not isinstance(entry.get("arch"), list):
        raise ValueError(f"{path}: 'top' entry {rank} has no 'arch' list of decisions")
    return entry["arch"]


def _std(values) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def _jsonable(config: RetrainConfig) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(config)))
