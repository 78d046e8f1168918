"""The experiment's settings, defaults in one place."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings of the Fashion-MNIST experiment.

    Searching:
      dataset: the data (validation carved from the training split; test used once).
      strategies: the shared-weights searches, `budget` architectures each (a count, not a
        time, so that the same seed gives the same architectures).
      channels, cells: the network's size while searching.
      warmup_steps, train_steps, warmup_sampling, few_shot: the shared-weights evaluator
        (by default the options that rank best in `experiments.ranking`).
      standalone_epochs: random search's contender trains each architecture this long, alone,
        for as long as the shared-weights searches took on average (`budget` at most).

    Retraining (the same recipe for every contender):
      retrain_channels, retrain_cells: the size of the searched networks; the hand-designed
        one gets the channels that bring its parameters closest to theirs.
      max_params: no contender may have more parameters.
      retrain_epochs, retrain_seeds, augment, batch_size, learning_rate: the recipe.
    """

    dataset: str = "fashion_mnist"
    strategies: tuple[str, ...] = ("reinforce", "bayesopt")
    budget: int = 200
    channels: int = 16
    cells: int = 2
    warmup_steps: int = 1000
    train_steps: int = 20
    warmup_sampling: str = "fair"
    few_shot: bool = True
    standalone_epochs: int = 1
    retrain_channels: int = 16
    retrain_cells: int = 3
    max_params: int = 1_000_000
    retrain_epochs: int = 30
    retrain_seeds: int = 3
    augment: str = "crop_flip"
    batch_size: int = 128
    learning_rate: float = 0.05
    seed: int = 0
    out: str = "experiments/results/fashion_mnist"


FULL = Config()

QUICK = Config(
    dataset="digits",
    strategies=("bayesopt",),
    channels=4,
    cells=1,
    warmup_steps=10,
    train_steps=2,
    budget=4,
    retrain_channels=4,
    retrain_cells=1,
    retrain_epochs=1,
    retrain_seeds=2,
    augment="crop",
    batch_size=64,
    out="",
)
