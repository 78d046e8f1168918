"""The search loop: ask the strategy, evaluate, tell, and log every evaluation as it happens.

Architectures whose canonical key was already evaluated are not trained again: they are told
the score on record and logged as ``cached`` (a repeat of an architecture still being evaluated
waits for that evaluation). Every asked architecture counts against the budget, so a strategy
that repeats itself spends its budget, and the loop always ends.

Evaluations run on an `Executor`: in this process by default, or on Ray workers
(`nas.distributed`). The loop runs in one of two modes:

- synchronous rounds (the default): ask `batch` architectures, evaluate them all, tell their
  scores in ask order. With the same seed (and no faults) the rounds are the same every run.
- asynchronous (``asynchronous=True``): keep the executor's `slots` evaluations in flight; ask
  one architecture whenever a slot frees, tell each score as it arrives.

With `checkpoints`, the loop checkpoints itself, the strategy and the evaluator (or the Ray
executor's shared weights) before the first evaluation, every `checkpoints.every` evaluations
(whenever every result has been told), and at the end. A resumed search (`Resume`) starts from such
a checkpoint; the evaluations its event log holds beyond the checkpoint are asked again (the
same seed asks the same architectures) but take their logged results instead of running again:
they are neither logged nor told twice. The logged tells are replayed as they happened, each
group at the point of the search where it was told (each ``tell`` event names how many
architectures had been asked), so that an asynchronous search, whose tells depend on when
results arrived, asks the same architectures again. Only an evaluator with state (shared
weights) trains their paths again, without scoring them, so that its weights come out as they
were.
"""

from __future__ import annotations

import collections
import dataclasses
import math
from collections.abc import Callable

import jax
import numpy as np

from nas.checkpoint import Checkpoints, Snapshot
from nas.evaluators import EvalResult, Evaluator
from nas.executor import Executor, InProcessExecutor
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

    @classmethod
    def from_json(cls, data: dict) -> Record:
        """The record `to_json` wrote (an ``eval`` event's fields)."""
        fields = {f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data}
        fields["arch"] = tuple(int(a) for a in fields["arch"])
        fields["score"] = math.nan if fields["score"] is None else float(fields["score"])
        return cls(**fields)


@dataclasses.dataclass(frozen=True)
class Tell:
    """One logged tell: the indices told together, once `asked` architectures had been asked."""

    asked: int
    indices: tuple[int, ...]


@dataclasses.dataclass
class Resume:
    """Where a resumed search starts: its checkpoint (None: the start), its logged records,
    and its logged tells in the order they happened."""

    start: Snapshot | None
    logged: dict[int, Record]
    tells: list[Tell] = dataclasses.field(default_factory=list)


def search(
    space: SearchSpace,
    strategy: Strategy,
    evaluator: Evaluator | Executor,
    *,
    budget: int,
    seed: int = 0,
    batch: int = 1,
    run_dir: RunDir | None = None,
    on_record: Callable[[Record, float], None] | None = None,
    asynchronous: bool = False,
    checkpoints: Checkpoints | None = None,
    resume: Resume | None = None,
    stop: Callable[[], bool] | None = None,
) -> list[Record]:
    """Runs a search of `budget` architectures and returns their records in ask order.

    Args:
      space: the search space.
      strategy: proposes architectures.
      evaluator: scores them: an `Evaluator` (run in this process) or an `Executor`.
      budget: how many architectures to ask for in all.
      seed: seeds the strategy's keys; the same seed gives the same search.
      batch: architectures asked for at once in synchronous rounds (one tell per round).
      run_dir: where each record is appended as it completes (optional).
      on_record: called with each record and the best score so far (for progress bars).
      asynchronous: ask one architecture per free executor slot and tell each score as it
        arrives, instead of synchronous rounds of `batch`.
      checkpoints: where to checkpoint the search (in-process evaluation only).
      resume: continue a search that stopped, from its checkpoint and event log.
      stop: asked before each new architecture; True ends the search early, once the
        evaluations under way finish (a time limit). The records returned are those asked.
    """
    if budget < 1 or batch < 1:
        raise ValueError(f"budget and batch must be positive, got {budget} and {batch}")
    executor = evaluator if isinstance(evaluator, Executor) else InProcessExecutor(evaluator)
    loop = _Loop(space, strategy, executor, seed, run_dir, on_record, resume or Resume(None, {}))
    loop.checkpoint(checkpoints)

    def more() -> bool:
        return loop.asked < budget and not (stop is not None and stop())

    if asynchronous:
        while more() or executor.pending():
            while executor.pending() < executor.slots and more():
                loop.ask(1)
                loop.tell()
            loop.collect(block=True)
            loop.tell()
            loop.checkpoint(checkpoints)
    else:
        while more():
            executor.new_round()
            indices = loop.ask(min(batch, budget - loop.asked))
            while any(i not in loop.records for i in indices):
                loop.collect(block=True)
            loop.tell(indices)
            loop.checkpoint(checkpoints)
    loop.finish()
    loop.checkpoint(checkpoints, final=True)
    return [loop.records[i] for i in range(loop.asked)]


class _Loop:
    """The state of one search: the strategy's, the records, and the canonical-key cache."""

    def __init__(self, space, strategy, executor, seed, run_dir, on_record, resume: Resume):
        self.space, self.strategy, self.executor = space, strategy, executor
        self.run_dir, self.on_record = run_dir, on_record
        self.logged = resume.logged
        self.replay_to = max(resume.logged, default=-1)  # the last index to replay
        self.asked, self.best = 0, -math.inf
        self.archs: dict[int, np.ndarray] = {}
        self.records: dict[int, Record] = {}
        self.seen: dict[str, float] = {}  # canonical key -> score, once evaluated
        self.waiting: dict[str, list[int]] = {}  # canonical key in flight -> its repeats
        self.untold: list[int] = []  # recorded, in the order recorded, not yet told
        self.script: collections.deque[Tell] = collections.deque()  # logged tells to replay
        if resume.start is None:
            self.key, init_key = jax.random.split(jax.random.key(seed))
            self.state = strategy.init(init_key)
            self.script.extend(resume.tells)
            return
        self.key, self.state = resume.start.key, resume.start.strategy_state
        pending = resume.start.pending
        for index in range(resume.start.asked):  # asked (and but for `pending`, told) before
            self.asked += 1
            if index in self.logged:
                record = self.logged[index]
                self.archs[index] = np.asarray(record.arch, np.int32)
                if not record.cached:
                    self.seen[record.key] = record.score
                self._record(record, log=False)
                if index not in pending:
                    self.untold.remove(index)
            else:  # in flight when the search stopped, never logged: evaluate it again
                self.archs[index] = np.asarray(pending[index], np.int32)
                self.waiting.setdefault(self.space.key(self.archs[index]), [])
                self.executor.submit(index, self.archs[index])
        told = set(range(resume.start.asked)) - set(pending)  # in the checkpoint's state
        self.script.extend(t for t in resume.tells if not told.issuperset(t.indices))

    def checkpoint(self, checkpoints: Checkpoints | None, final: bool = False) -> None:
        """Checkpoints the search if one is due (or it ended) and every record was told.

        Evaluations still in flight (on Ray workers) are kept in the checkpoint as pending:
        a resumed search takes their results from the log, or evaluates them again.
        """
        if checkpoints is None or self.untold:
            return
        if checkpoints.due(self.asked) or (final and checkpoints.last != self.asked):
            pending = {
                i: [int(a) for a in self.archs[i]]
                for i in range(self.asked)
                if i not in self.records
            }
            snapshot = Snapshot(self.asked, self.key, self.state, pending)
            checkpoints.save(snapshot, getattr(self.executor, "evaluator", self.executor))

    def ask(self, n: int) -> list[int]:
        """Asks for `n` architectures and submits each new one; returns their indices.

        Repeats of evaluated architectures are recorded at once; results that are already
        finished are recorded in between submissions, so an in-process search logs in order.
        """
        self._tell_scripted(self.asked)
        self.key, ask_key = jax.random.split(self.key)
        archs, self.state = self.strategy.ask(ask_key, self.state, n)
        fresh = [i for i in range(self.asked, self.asked + n) if i not in self.logged]
        if fresh:
            self._log("ask", indices=fresh)
        indices = []
        for arch in np.asarray(archs):
            index, key = self.asked, self.space.key(arch)
            self.asked += 1
            self.archs[index] = arch
            indices.append(index)
            if index in self.logged:
                self._replay(self.logged[index], arch)
            elif key in self.seen:
                self._record(Record(index, _tuple(arch), key, self.seen[key], 0, 0.0, True))
            elif key in self.waiting:
                self.waiting[key].append(index)
            else:
                self.waiting[key] = []
                self.executor.submit(index, arch)
                self.collect(block=False)
        return indices

    def collect(self, block: bool) -> None:
        """Records the executor's finished evaluations (and their waiting repeats)."""
        for index, result in self.executor.poll(block):
            arch = self.archs[index]
            key = self.space.key(arch)
            self.seen[key] = result.score
            self._record(_record(index, arch, key, result))
            for repeat in self.waiting.pop(key):
                arch = self.archs[repeat]
                self._record(Record(repeat, _tuple(arch), key, result.score, 0, 0.0, True))

    def tell(self, indices: list[int] | None = None) -> None:
        """Tells the strategy the scores of `indices` in that order (default: every record not
        told yet, in the order recorded). Records whose tell the log holds wait for its turn."""
        self._tell_scripted(self.asked)
        indices = self.untold if indices is None else indices
        waiting = set(self.untold) - {i for t in self.script for i in t.indices}
        indices = [i for i in indices if i in waiting and not self._held(i)]
        if indices:
            self._tell(indices)
            self._log("tell", indices=indices, asked=self.asked)

    def finish(self) -> None:
        """Tells what is left: a search stopped early may not reach its logged tells' turn."""
        self._tell_scripted(math.inf)
        self.replay_to = -1  # nothing is left to replay
        self.tell()

    def _held(self, index: int) -> bool:
        """Whether the result of `index` waits for the replay to end: one the log does not
        hold came after every logged evaluation had been asked (it was in flight when the
        search stopped, or the log lost it and its tell, if logged, replays it)."""
        return index not in self.logged and self.asked <= self.replay_to

    def _tell_scripted(self, asked: float) -> None:
        """Replays the logged tells made once at most `asked` architectures had been asked."""
        while self.script and self.script[0].asked <= asked:
            indices = [i for i in self.script.popleft().indices if i < self.asked]
            while any(i not in self.records for i in indices) and self.executor.pending():
                self.collect(block=True)  # a result the log lost, evaluated again
            indices = [i for i in indices if i in self.records]
            if indices:
                self._tell(indices)

    def _tell(self, indices: list[int]) -> None:
        archs = np.stack([self.archs[i] for i in indices])
        scores = np.asarray([self.records[i].score for i in indices], np.float32)
        self.state = self.strategy.tell(archs, scores, self.state)
        self.untold = [i for i in self.untold if i not in indices]

    def _replay(self, record: Record, arch) -> None:
        """Takes the logged result of an evaluation that ran before the search stopped."""
        if record.arch != _tuple(arch):
            raise RuntimeError(
                f"resume: evaluation {record.index} in the event log is {list(record.arch)}, "
                f"but the resumed search asked for {_tuple(arch)}: the strategy or the code "
                "changed since the search started"
            )
        if not record.cached:
            if record.steps and hasattr(self.executor, "replay"):
                self.executor.replay(arch)
            self.seen[record.key] = record.score
        self._record(record, log=False)

    def _record(self, record: Record, log: bool = True) -> None:
        self.records[record.index] = record
        self.untold.append(record.index)
        if not math.isnan(record.score):
            self.best = max(self.best, record.score)
        if log:
            self._log("eval", **record.to_json())
        if self.on_record is not None:
            self.on_record(record, self.best)

    def _log(self, event: str, **fields) -> None:
        if self.run_dir is not None:
            self.run_dir.log(event, **fields)


def _tuple(arch) -> tuple[int, ...]:
    return tuple(int(a) for a in arch)


def _record(index: int, arch, key: str, result: EvalResult) -> Record:
    return Record(
        index, _tuple(arch), key, result.score, result.steps, result.seconds, error=result.error
    )


def top(records: list[Record], k: int = 5) -> list[Record]:
    """The `k` best distinct architectures by score (failures last)."""
    unique = {r.key: r for r in records if not r.cached}
    ranked = sorted(unique.values(), key=lambda r: -r.score if not math.isnan(r.score) else 1e9)
    return ranked[:k]
