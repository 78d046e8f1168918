"""The evaluator interface: an architecture in, a score (higher is better) out.

Evaluators hold no assumption about where they run: the search loop calls them in-process,
and a distributed worker can hold one and call the same methods.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Protocol

import numpy as np


@dataclasses.dataclass(frozen=True)
class EvalResult:
    """The outcome of one evaluation.

    Attributes:
      score: validation accuracy (NaN when the evaluation failed).
      steps: training steps spent on this architecture.
      seconds: wall time of the evaluation.
      error: why it failed, or None.
    """

    score: float
    steps: int
    seconds: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and math.isfinite(self.score)


class Evaluator(Protocol):
    """Turns an architecture into a validation score."""

    def evaluate(self, arch: np.ndarray) -> EvalResult: ...


class Timer:
    """Wall time since construction, for `EvalResult.seconds`."""

    def __init__(self):
        self.start = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.start
