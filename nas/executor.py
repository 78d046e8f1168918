"""Where evaluations run: the interface the search loop submits to, and its in-process version.

The search loop (`nas.search.search`) never calls an evaluator directly: it submits each
architecture to an `Executor` and collects results as they complete. `InProcessExecutor` runs
them one at a time in this process, as soon as they are submitted, so the loop behaves exactly
as a plain ``for arch in archs: evaluator.evaluate(arch)``. `nas.distributed.RayExecutor` keeps
several evaluations in flight on Ray workers and returns them in completion order.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol, runtime_checkable

import numpy as np

from nas.evaluators import EvalResult, Evaluator


@runtime_checkable
class Executor(Protocol):
    """Runs evaluations submitted by the search loop; results come back in any order.

    Attributes:
      slots: how many evaluations it can hold at once (the asynchronous loop keeps this many
        submitted).
    """

    slots: int

    def submit(self, index: int, arch: np.ndarray) -> None:
        """Starts evaluating `arch`, the `index`-th architecture asked for."""
        ...

    def poll(self, block: bool) -> list[tuple[int, EvalResult]]:
        """The (index, result) pairs finished since the last poll.

        With `block`, waits until at least one is finished (returns [] if none is pending).
        """
        ...

    def pending(self) -> int:
        """Evaluations submitted whose results `poll` has not returned yet."""
        ...

    def new_round(self) -> None:
        """Called by the synchronous loop before each round's submissions, when nothing is
        pending; lets an executor fix what a round starts from (the shared weights' version)."""
        ...


def evaluate_safely(evaluator: Evaluator, arch) -> EvalResult:
    """`evaluator.evaluate(arch)`, with an exception turned into a failed result."""
    try:
        return evaluator.evaluate(arch)
    except Exception as error:  # noqa: BLE001 - one failing child must not end the search
        return EvalResult(float("nan"), 0, 0.0, f"{type(error).__name__}: {error}")


class InProcessExecutor:
    """Evaluates each architecture in this process, at once, in submission order.

    Args:
      evaluator: scores the architectures.
    """

    slots = 1

    def __init__(self, evaluator: Evaluator):
        self.evaluator = evaluator
        self._done: deque[tuple[int, EvalResult]] = deque()

    def submit(self, index: int, arch: np.ndarray) -> None:
        self._done.append((index, evaluate_safely(self.evaluator, arch)))

    def poll(self, block: bool) -> list[tuple[int, EvalResult]]:
        done = list(self._done)
        self._done.clear()
        return done

    def pending(self) -> int:
        return len(self._done)

    def new_round(self) -> None:
        pass

    def replay(self, arch: np.ndarray) -> None:
        """Redoes what evaluating `arch` changed in the evaluator, for a resumed search."""
        if hasattr(self.evaluator, "replay"):
            self.evaluator.replay(arch)
