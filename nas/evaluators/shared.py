"""Shared-weights evaluation: every architecture trains and is scored inside one supernet.

An architecture inherits the supernet's current weights, trains its own path for
`train_steps` steps (the updated weights stay in the supernet), and is scored by its accuracy
on the validation split. Before the first evaluation, `warmup_steps` steps train the supernet on
sampled paths (`nas.evaluators.paths`). One compiled train step and one eval step serve every
architecture.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np
from flax import nnx

from nas.data import BatchStream, Dataset
from nas.evaluators.base import EvalResult, Timer
from nas.evaluators.paths import warmup_paths
from nas.space import SearchSpace
from nas.supernet import supernet
from nas.train import TrainConfig, Trainer, loop_length

SCORES = ("accuracy", "loss")


class SharedWeightsEvaluator:
    """Scores architectures with weights inherited from (and written back to) a supernet.

    Args:
      space: the search space.
      data: the dataset; training batches come from its train split, scores from validation.
      train_steps: steps each architecture trains its path before it is scored.
      warmup_steps: sampled-path steps before the first evaluation.
      config: optimizer settings; the schedule spans warm-up plus `planned_evaluations`.
      planned_evaluations: how many evaluations the schedule plans for.
      seed: seeds the weights, the batch order and the warm-up paths.
      scan_edges: build the supernet with scanned edges (faster compile, slower steps).
      scan_cells: build the supernet with each stage's identical cells scanned (`Network`).
      branching: how the supernet's edges pick their op, "switch" or "select" (`nas.cells`).
      sampling: how the warm-up samples paths, ``"fair"`` (every op of every edge equally
        often; the default: it ranks better, see the README's ranking figures) or ``"uniform"``.
      write_back: keep each architecture's training in the supernet; False trains the path on
        a copy that is dropped after scoring (fine-tuning only).
      score_samples: validation examples each score is measured on (None: all of them).
      score_by: ``"accuracy"`` (validation accuracy) or ``"loss"`` (the negative mean
        validation cross-entropy, which does not tie as accuracy on a small split does).
      few_shot: after half the warm-up, split the supernet into one copy per op of the first
        edge, each trained and used only by the paths with that op there (Zhao et al.,
        "Few-shot Neural Architecture Search", ICML 2021).
    """

    def __init__(
        self,
        space: SearchSpace,
        data: Dataset,
        *,
        train_steps: int = 20,
        warmup_steps: int = 200,
        config: TrainConfig = TrainConfig(),
        planned_evaluations: int = 100,
        seed: int = 0,
        scan_edges: bool = False,
        scan_cells: bool = False,
        branching: str = "switch",
        sampling: str = "fair",
        write_back: bool = True,
        score_samples: int | None = None,
        score_by: str = "accuracy",
        few_shot: bool = False,
    ):
        if score_by not in SCORES:
            raise ValueError(f"unknown score_by {score_by!r}; choose from {SCORES}")
        self.score_by = score_by
        self.space, self.data = space, data
        self.sampling, self.write_back, self.score_samples = sampling, write_back, score_samples
        self.train_steps, self.warmup_steps, self.seed = train_steps, warmup_steps, seed
        net = supernet(
            space,
            data.input_shape,
            data.num_classes,
            seed=seed,
            scan_edges=scan_edges,
            scan_cells=scan_cells,
            branching=branching,
        )
        total = warmup_steps + train_steps * planned_evaluations
        self.trainer = Trainer(net, config, total, steps_per_call=loop_length(train_steps))
        self.stream = BatchStream(data.x_train, data.y_train, config.batch_size, seed=seed)
        self.warmed_up = False
        self.few_shot, self._shards, self._shard = few_shot, None, 0

    def warmup(self, on_step: Callable[[], None] | None = None) -> float:
        """Trains the supernet on sampled paths; returns the mean loss.

        Args:
          on_step: called after each step (for a progress bar).
        """
        key = jax.random.key(self.seed)
        archs = np.asarray(warmup_paths(self.space, key, self.warmup_steps, self.sampling))
        half = len(archs) // 2 if self.few_shot else len(archs)
        losses = self._train_runs([archs[:half]], on_step)
        if self.few_shot:  # after half the warm-up, each path trains its own copy
            self._split()
            losses += self._train_runs(_runs(archs[half:], self.copy_of), on_step)
        self.warmed_up = True
        losses = np.concatenate([np.zeros(0), *jax.device_get(losses)])
        return float(np.mean(losses)) if len(losses) else float("nan")

    def _train_runs(self, runs, on_step) -> list[jax.Array]:
        """Trains each run of paths (all of one copy of the weights) in calls of the trainer's
        loop; returns each call's losses (not waited for)."""
        losses, k = [], self.trainer.steps_per_call
        for run in runs:
            for start in range(0, len(run), k):
                losses.append(self._run(run[start : start + k]))
                if on_step is not None:
                    for _ in range(len(losses[-1])):
                        on_step()
        return losses

    def evaluate(self, arch) -> EvalResult:
        """Trains `arch`'s path for `train_steps` steps, then scores it on validation data."""
        if not self.warmed_up:
            self.warmup()
        timer = Timer()
        arch = self.space.validate(arch)
        self._enter(arch)
        before = self.trainer.snapshot()
        losses = self._run_steps(arch)
        # Scored before the losses are read, so that JAX traces (the first time compiles) and
        # queues the eval step while the train steps run.
        score = self.score(arch)
        loss = self._mean_loss(losses, before)
        if not self.write_back:
            self.trainer.restore(before)
        if not np.isfinite(loss):
            return EvalResult(float("nan"), self.train_steps, timer(), f"training loss {loss}")
        return EvalResult(score, self.train_steps, timer())

    def train_path(self, arch: np.ndarray, stream: BatchStream | None = None) -> float:
        """Trains the path of `arch` (validated) for `train_steps` steps; returns the mean loss.

        A non-finite loss puts the weights and optimizer state back as they were before.

        Args:
          arch: the architecture, as `space.validate` returns it.
          stream: the training batches (default: the evaluator's own stream).
        """
        self._enter(arch)
        before = self.trainer.snapshot()
        return self._mean_loss(self._run_steps(arch, stream), before)

    def _run_steps(self, arch, stream: BatchStream | None = None) -> jax.Array:
        """Queues `arch`'s `train_steps` steps; returns their losses (not waited for)."""
        return self._run(np.tile(arch, (self.train_steps, 1)), stream)

    def _run(self, archs: np.ndarray, stream: BatchStream | None = None) -> jax.Array:
        """Queues one train step per architecture of `archs` (all trained by one copy of the
        weights) on the next batches; returns their losses (not waited for)."""
        if not len(archs):
            return np.zeros(0, np.float32)
        self._enter(archs[0])
        xs, ys = (self.stream if stream is None else stream).take(len(archs))
        return self.trainer.train_steps(xs, ys, archs)

    def _mean_loss(self, losses: jax.Array, before: tuple) -> float:
        """The mean of `losses`; if it is not finite, puts back the `before` snapshot."""
        loss = float(np.mean(jax.device_get(losses))) if len(losses) else 0.0
        if not np.isfinite(loss):
            # A diverging child must not poison the weights every other architecture shares.
            self.trainer.restore(before)
        return loss

    def score(self, arch: np.ndarray) -> float:
        """The validation accuracy (or negative loss) of `arch` with the current weights."""
        self._enter(arch)
        n = self.score_samples
        accuracy, loss = self.trainer.evaluate(self.data.x_val[:n], self.data.y_val[:n], arch)
        return accuracy if self.score_by == "accuracy" else -loss

    def compile(self) -> None:
        """Compiles the train and eval steps now, leaving the weights as they are.

        One compile serves every architecture; a Ray worker calls this when it starts so that
        no evaluation pays for it.
        """
        arch = self.space.validate(self.space.sample(jax.random.key(self.seed)))
        batch = self.trainer.config.batch_size
        self.trainer.compile(self.data.x_train[:batch], self.data.y_train[:batch], arch)
        self.score(arch)

    def replay(self, arch) -> None:
        """Trains `arch`'s path again, as its logged evaluation did, without scoring it.

        A resumed search calls this for each evaluation logged after its last checkpoint, so
        the weights come out as they were when the search stopped.
        """
        if self.write_back:
            self.train_path(self.space.validate(arch))
        else:  # the weights stay; only the batches move on
            for _ in range(self.train_steps):
                self.stream.next()

    def state(self) -> tuple[dict, dict]:
        """What a checkpoint keeps: the arrays (weights, optimizer state) and plain counters."""
        current = (self.trainer.params, self.trainer.opt_state)
        arrays = {"params": current[0], "opt_state": current[1]}
        meta = {"stream": self.stream.state(), "warmed_up": self.warmed_up}
        if self.few_shot:  # the copies, or before the split the one set of weights k times
            if self._shards is not None:
                self._shards[self._shard] = current
            shards = self._shards or [current] * self.n_copies
            arrays["shards"] = [{"params": p, "opt_state": o} for p, o in shards]
            meta["shard"] = None if self._shards is None else self._shard
        return arrays, meta

    def load_state(self, arrays: dict, meta: dict) -> None:
        """Puts back a `state()`."""
        self.trainer.params, self.trainer.opt_state = arrays["params"], arrays["opt_state"]
        data, batch = self.data, self.trainer.config.batch_size
        self.stream = BatchStream(
            data.x_train, data.y_train, batch, seed=self.seed, state=meta["stream"]
        )
        self.warmed_up = meta["warmed_up"]
        if meta.get("shard") is not None:
            self._shards = [(s["params"], s["opt_state"]) for s in arrays["shards"]]
            self._shard = meta["shard"]

    def network(self, arch=None):
        """The supernet (an NNX module) with the weights that `arch` trains and is scored with:
        with few-shot, the copy of its first edge's op (default: the current copy)."""
        if arch is not None:
            self._enter(self.space.validate(arch))
        return nnx.merge(self.trainer.graphdef, self.trainer.params)

    @property
    def n_copies(self) -> int:
        """Copies of the weights: with few-shot one per op of the first edge, else one."""
        return int(self.space.cardinalities[0]) if self.few_shot else 1

    def copy_of(self, arch) -> int:
        """The copy of the weights that `arch` trains: with few-shot, its first edge's op."""
        return int(arch[0]) if self.few_shot else 0

    def take_copies(self) -> list[tuple]:
        """The ``(params, opt_state)`` of each copy of the weights (one, or with few-shot one
        per op of the first edge), which the evaluator lets go of: from then on the caller
        puts in place the weights that each architecture trains (a Ray worker does)."""
        current = (self.trainer.params, self.trainer.opt_state)
        if self._shards is None:
            return [current] * self.n_copies
        self._shards[self._shard] = current
        copies, self._shards = self._shards, None
        return copies

    def put_copies(self, params: list) -> None:
        """Sets the weights of each copy (those of a search on Ray); optimizer states stay."""
        opt_state = self.trainer.opt_state
        if self.few_shot:
            self._shards, self._shard = [(p, opt_state) for p in params], 0
        self.trainer.params = params[0]

    def _split(self) -> None:
        """Few-shot: one copy of the weights and optimizer state per op of the first edge."""
        current = (self.trainer.params, self.trainer.opt_state)
        self._shards, self._shard = [current] * self.n_copies, 0

    def _enter(self, arch) -> None:
        """Few-shot: makes the copy that `arch` belongs to the trainer's weights."""
        if self._shards is None or self.copy_of(arch) == self._shard:
            return
        self._shards[self._shard] = (self.trainer.params, self.trainer.opt_state)
        self._shard = self.copy_of(arch)
        self.trainer.params, self.trainer.opt_state = self._shards[self._shard]


def _runs(archs, key) -> list:
    """`archs` cut into runs of consecutive architectures with equal ``key(arch)``."""
    runs = []
    for arch in archs:
        if runs and key(arch) == key(runs[-1][0]):
            runs[-1].append(arch)
        else:
            runs.append([arch])
    return [np.stack(r) for r in runs]
