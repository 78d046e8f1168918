"""The search loop: ask the strategy, evaluate, tell, and log every evaluation as it happens.

Architectures whose canonical key was already evaluated are not trained again: they are told
the score on record and logged as ``cached``. Every asked architecture counts against the
budget, so a strategy that repeats itself spends its budget, and the loop always ends.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax
import numpy as np

from nas.evaluators import EvalResult, Evaluator
from nas.rundir import RunDir
from nas.space import SearchSpace
from nas.strategies import Strategy


@dataclasses.dataclass(frozen=True)
class Record:
    """One asked architecture and its outcome, as logged."""

    index: int
    arch: tuple[int, ...]
    key: str
    score: float
    steps: int
    seconds: float
    cached: bool = False
    error: str | None = None

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        data["arch"] = list(self.arch)
        data["score"] = None if math.isnan(self.score) else self.score
        return data


def search(
    space: SearchSpace,
    strategy: Strategy,
    evaluator: Evaluator,
    *,
    budget: int,
    seed: int = 0,
    batch: int = 1,
    run_dir: RunDir | None = None,
    on_record: Callable[[Record, float], None] | None = None,
) -> list[Record]:
    """Runs a search of `budget` architectures and returns their records in order.

    Args:
      space: the search space.
      strategy: proposes architectures.
      evaluator: scores them.
      budget: how many architectures to ask for in all.
      seed: seeds the strategy's keys; the same seed gives the same search.
      batch: architectures asked for at once (one tell per batch).
      run_dir: where each record is appended as it completes (optional).
      on_record: called with each record and the best score so far (for progress bars).
    """
    if budget < 1 or batch < 1:
        raise ValueError(f"budget and batch must be positive, got {budget} and {batch}")
    key = jax.random.key(seed)
    key, init_key = jax.random.split(key)
    state = strategy.init(init_key)
    records: list[Record] = []
    seen: dict[str, float] = {}
    best = -math.inf
    while len(records) < budget:
        key, ask_key = jax.random.split(key)
        n = min(batch, budget - len(records))
        archs, state = strategy.ask(ask_key, state, n)
        archs = np.asarray(archs)
        scores = []
        for arch in archs:
            record = _evaluate(space, evaluator, arch, len(records), seen)
            records.append(record)
            scores.append(record.score)
            if not math.isnan(record.score):
                best = max(best, record.score)
            if run_dir is not None:
                run_dir.log("eval", **record.to_json())
            if on_record is not None:
                on_record(record, best)
        state = strategy.tell(archs, np.asarray(scores, np.float32), state)
    return records


def _evaluate(space, evaluator, arch, index, seen) -> Record:
    key = space.key(arch)
    arch_t = tuple(int(a) for a in arch)
    if key in seen:
        return Record(index, arch_t, key, seen[key], 0, 0.0, cached=True)
    try:
        result = evaluator.evaluate(arch)
    except Exception as error:  # noqa: BLE001 - one failing child must not end the search
        result = EvalResult(float("nan"), 0, 0.0, f"{type(error).__name__}: {error}")
    seen[key] = result.score
    return Record(
        index, arch_t, key, result.score, result.steps, result.seconds, error=result.error
    )


def top(records: list[Record], k: int = 5) -> list[Record]:
    """The `k` best distinct architectures by score (failures last)."""
    unique = {r.key: r for r in records if not r.cached}
    ranked = sorted(unique.values(), key=lambda r: -r.score if not math.isnan(r.score) else 1e9)
    return ranked[:k]
