"""Checkpoints of a search: what a resumed search needs to go on exactly where it stopped.

``RUN_DIR/checkpoints/N/`` is the checkpoint taken after the first N asked architectures were
evaluated and told. It holds two items, written with Orbax:

- ``state``: the arrays: the strategy's state, and the evaluator's (the supernet parameters and
  optimizer state of shared-weights evaluation; nothing for stateless evaluators).
- ``meta``: JSON: N, the search loop's PRNG key, and the evaluator's counters (the position of
  its batch stream, whether it is warmed up).

Orbax writes a checkpoint into a temporary directory and renames it when it is complete (in a
background thread: the search goes on meanwhile), so a crash mid-write leaves the previous
checkpoint intact; the newest `keep` are kept. A checkpoint that cannot be read is skipped for
the one before it, with a warning.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from nas.strategies import Strategy

FORMAT = 1  # bumped when the checkpoint's content changes


@dataclasses.dataclass
class Snapshot:
    """Where the search loop stands at a checkpoint."""

    asked: int  # architectures asked
    key: jax.Array  # the loop's PRNG key
    strategy_state: Any
    # Asked but not yet told (evaluations in flight on Ray workers), by index: the
    # architecture's decisions. Empty for an in-process search.
    pending: dict[int, list[int]] = dataclasses.field(default_factory=dict)


class Checkpoints:
    """The checkpoints of one run directory.

    Args:
      path: the directory (``RUN_DIR/checkpoints``).
      every: evaluations between checkpoints (0: only the one before the first evaluation).
      keep: how many of the newest checkpoints to keep.
    """

    def __init__(self, path, *, every: int, keep: int = 2):
        self.path, self.every = Path(path).resolve(), every
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
        self._manager = ocp.CheckpointManager(self.path, options=options)
        self.last = self._manager.latest_step()

    def due(self, asked: int) -> bool:
        """Whether a checkpoint is due after `asked` evaluations (none taken there yet)."""
        if self.last is None:
            return True
        return self.every > 0 and asked >= self.last + self.every

    def save(self, snapshot: Snapshot, evaluator) -> None:
        """Starts writing a checkpoint of `snapshot` and `evaluator` (returns before it ends)."""
        arrays, counters = _evaluator_state(evaluator)
        meta = {
            "format": FORMAT,
            "asked": snapshot.asked,
            "pending": {str(i): arch for i, arch in snapshot.pending.items()},
            "key": np.asarray(jax.random.key_data(snapshot.key)).tolist(),
            "evaluator": counters,
        }
        state = {"strategy": snapshot.strategy_state, "evaluator": arrays}
        self._manager.save(
            snapshot.asked,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)
            ),
        )
        self.last = snapshot.asked

    def restore(self, strategy: Strategy, evaluator, *, logged=None):
        """Restores the newest usable checkpoint into `evaluator`; returns its `Snapshot`.

        Args:
          strategy: gives the shape of its state.
          evaluator: receives its saved state (weights, optimizer state, batch position);
            anything with the `state` and `load_state` methods of `SharedWeightsEvaluator`.
          logged: the indices the event log holds evaluations of; a checkpoint is usable
            only if each index it counts as asked is logged or pending in it.

        Returns:
          The snapshot, or None when there is no readable checkpoint.
        """
        template = {
            "strategy": strategy.init(jax.random.key(0)),
            "evaluator": _evaluator_state(evaluator)[0],
        }
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
        for step in sorted(self._manager.all_steps(), reverse=True):
            try:
                saved = self._manager.restore(
                    step,
                    args=ocp.args.Composite(
                        state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()
                    ),
                )
                meta = saved.meta
                if meta.get("format") != FORMAT or meta.get("asked") != step:
                    raise ValueError(f"meta {meta} is not a format-{FORMAT} checkpoint {step}")
                pending = {int(i): arch for i, arch in meta["pending"].items()}
            except Exception as error:  # noqa: BLE001 - any unreadable checkpoint is skipped
                warnings.warn(
                    f"checkpoint {self.path / str(step)} cannot be read ({error}); trying the "
                    "one before it",
                    stacklevel=2,
                )
                continue
            if logged is not None and any(
                i not in logged and i not in pending for i in range(step)
            ):
                continue  # the log lost an evaluation this checkpoint counts as told
            if hasattr(evaluator, "load_state"):
                evaluator.load_state(saved.state["evaluator"], meta["evaluator"])
            key = jax.random.wrap_key_data(np.asarray(meta["key"], np.uint32))
            self.last = step
            return Snapshot(step, key, saved.state["strategy"], pending)
        return None

    def close(self) -> None:
        """Waits for the checkpoint being written, then releases the manager."""
        self._manager.wait_until_finished()
        self._manager.close()


def _evaluator_state(evaluator) -> tuple[dict, dict]:
    return evaluator.state() if hasattr(evaluator, "state") else ({}, {})


def load_supernet(run_dir, arch=None):
    """The supernet of the search in `run_dir`, with the weights of its latest checkpoint.

    Args:
      arch: with few-shot weights, the architecture whose copy to take (see
        `SharedWeightsEvaluator.network`); default: the copy in use when the checkpoint was taken.

    Returns:
      The `nas.supernet.Network`, or None when the search had no shared weights (a
      standalone or tabular evaluator).

    Raises:
      FileNotFoundError: the run has shared weights but no readable checkpoint of them.
      ValueError: the run's config.json is missing, malformed or unknown to this version.
    """
    evaluator = restore_evaluator(run_dir)
    return None if evaluator is None else evaluator.network(arch)


def restore_evaluator(run_dir):
    """The shared-weights evaluator of the search in `run_dir`, restored from its latest
    checkpoint; None when the search had no shared weights. Raises as `load_supernet`."""
    from nas.data import load_dataset
    from nas.experiment import make_evaluator, make_strategy, read_config
    from nas.space import load_space

    run_dir = Path(run_dir)
    config = read_config(run_dir)
    if config.evaluator != "shared":
        return None
    space = load_space(config.space, channels=config.channels, cells_per_stage=config.cells)
    evaluator = make_evaluator(config, space, load_dataset(config.dataset))
    if not (run_dir / "checkpoints").is_dir():
        raise FileNotFoundError(f"{run_dir / 'checkpoints'} does not exist: no weights to load")
    checkpoints = Checkpoints(run_dir / "checkpoints", every=0)
    target = _SharedWeights(evaluator) if config.workers else evaluator
    try:
        snapshot = checkpoints.restore(make_strategy(config, space), target)
    finally:
        checkpoints.close()
    if snapshot is None:
        raise FileNotFoundError(f"{run_dir / 'checkpoints'} holds no readable checkpoint")
    return evaluator


class _SharedWeights:
    """The supernet weights of a search on Ray, as its checkpoints hold them: the leaves of
    the parameters, or of each few-shot copy (see `nas.distributed.RayExecutor.state`),
    restored into `evaluator`."""

    def __init__(self, evaluator):
        self.evaluator = evaluator

    def state(self) -> tuple[dict, dict]:
        leaves = jax.tree.leaves(self.evaluator.trainer.params)
        return shared_weight_arrays([leaves] * self.evaluator.n_copies), {}

    def load_state(self, arrays: dict, meta: dict) -> None:
        tree = jax.tree.structure(self.evaluator.trainer.params)
        copies = shared_weight_copies(arrays)
        self.evaluator.put_copies([jax.tree.unflatten(tree, c) for c in copies])


def shared_weight_arrays(copies: list[list]) -> dict:
    """How a checkpoint of a search on Ray holds its shared weights, given the leaves of each
    copy: ``params`` (one copy), or ``copies`` (few-shot)."""
    return {"params": copies[0]} if len(copies) == 1 else {"copies": copies}


def shared_weight_copies(arrays: dict) -> list[list]:
    """The leaves of each copy that `shared_weight_arrays` laid out."""
    return arrays["copies"] if "copies" in arrays else [arrays["params"]]
