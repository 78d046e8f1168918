"""Standalone evaluation: each architecture's own network, trained from scratch.

The reference that shared-weights scores are measured against: no weight sharing, so no
ranking bias, but one XLA compile and a full training run per architecture.
"""

from __future__ import annotations

import numpy as np

from nas.data import BatchStream, Dataset
from nas.evaluators.base import EvalResult, Timer
from nas.space import SearchSpace
from nas.supernet import child_net
from nas.train import TrainConfig, Trainer, loop_length


class StandaloneEvaluator:
    """Trains each architecture's child net from scratch and scores it on validation data.

    Args:
      space: the search space.
      data: the dataset.
      epochs: passes over the training split.
      config: optimizer settings (the schedule spans the whole run).
      seed: seeds the weights and the batch order (the same for every architecture).
    """

    def __init__(
        self,
        space: SearchSpace,
        data: Dataset,
        *,
        epochs: int = 5,
        config: TrainConfig = TrainConfig(),
        seed: int = 0,
    ):
        self.space, self.data, self.epochs = space, data, epochs
        self.config, self.seed = config, seed
        self.steps = epochs * max(len(data.x_train) // config.batch_size, 1)

    def evaluate(self, arch) -> EvalResult:
        timer = Timer()
        arch = self.space.validate(arch)
        data = self.data
        net = child_net(self.space, arch, data.input_shape, data.num_classes, seed=self.seed)
        trainer = Trainer(net, self.config, self.steps, steps_per_call=loop_length(self.steps))
        stream = BatchStream(data.x_train, data.y_train, self.config.batch_size, seed=self.seed)
        chunks = stream.chunks(self.steps, trainer.steps_per_call)
        losses = np.concatenate([trainer.train_steps(*c) for c in chunks])
        if not np.all(np.isfinite(losses)):
            return EvalResult(float("nan"), self.steps, timer(), "training loss is not finite")
        accuracy, _ = trainer.evaluate(data.x_val, data.y_val)
        return EvalResult(accuracy, self.steps, timer())
