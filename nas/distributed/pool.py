"""The dispatcher: keeps several evaluations in flight on each Ray worker, and loses none.

`RayExecutor` is the search loop's `nas.executor.Executor` over a list of `EvalWorker` actors.
It queues submitted architectures, keeps up to `in_flight` calls outstanding per worker (so a
worker starts its next evaluation while the driver asks and tells), and collects results in
completion order with a ``ray.wait`` loop. (`ray.util.ActorPool` keeps only one call in flight
per actor.)

A worker gets work only once its ``info()`` call has answered, so an actor that Ray cannot place
(a cluster short of CPUs) or that is still compiling holds no evaluation hostage.

Faults. A call that fails because its worker died (`ray.exceptions.RayActorError` and kin) is
put back at the front of the queue and runs again, on any worker. The dead worker gets no new
work until an ``info()`` call on it answers again: Ray restarts actors created with
``max_restarts``; one that stays dead (no restarts left, or killed for good) is replaced by a
new actor from `replace`. An architecture whose evaluation killed its worker `max_attempts`
times is recorded as a failed evaluation. Since the weight store applies each ticket once, a
re-run evaluation never counts twice in the shared weights.

In synchronous rounds (``sync=True``) the executor waits until every worker has started, the
evaluation with ticket ``t`` goes to worker ``t % workers`` (whose calls run in the order sent),
and the whole round trains from one pinned version of the weights, so a round's results do not
depend on timing. A worker death breaks that: its evaluations go to the others.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections import deque
from collections.abc import Callable

import numpy as np
import ray
from ray.exceptions import OutOfMemoryError, RayActorError, RayError, WorkerCrashedError

from nas.checkpoint import shared_weight_arrays, shared_weight_copies
from nas.evaluators import EvalResult

# Errors that mean the worker process is gone, not that the evaluation failed.
WORKER_LOST = (RayActorError, WorkerCrashedError, OutOfMemoryError)


@dataclasses.dataclass
class _Job:
    index: int
    ticket: int
    arch: np.ndarray
    pinned: tuple | None
    attempts: int = 0


class RayExecutor:
    """Runs the search loop's evaluations on Ray `EvalWorker` actors.

    Args:
      workers: the worker actor handles.
      store: the `WeightStore` actor (None: no shared weights).
      in_flight: calls outstanding per worker.
      sync: pin each round's weights and assign evaluations to workers by ticket.
      per_call: evaluations sent to a worker in one call (more than 1 for evaluations of a
        few milliseconds, such as a tabular benchmark's, which a call each would not pay for).
      replace: ``replace(i)`` creates a new actor for worker slot `i` that stayed dead.
      max_attempts: worker deaths one evaluation may cause before it is recorded as failed.
      max_replacements: new actors created in all before the executor gives up on a slot
        (default: twice the number of workers).
      start_timeout: seconds synchronous rounds wait for every worker to start.
    """

    def __init__(
        self,
        workers: list,
        *,
        store=None,
        in_flight: int = 2,
        sync: bool = False,
        per_call: int = 1,
        replace: Callable[[int], object] | None = None,
        max_attempts: int = 3,
        max_replacements: int | None = None,
        start_timeout: float = 600.0,
    ):
        if not workers or in_flight < 1 or per_call < 1:
            raise ValueError(
                f"RayExecutor needs workers, in_flight >= 1 and per_call >= 1, got {in_flight} "
                f"and {per_call}"
            )
        self.workers, self.store, self.in_flight, self.sync = list(workers), store, in_flight, sync
        self.per_call = per_call
        self.slots = len(self.workers) * in_flight * per_call
        self._replace, self.max_attempts, self.start_timeout = replace, max_attempts, start_timeout
        self.max_replacements = 2 * len(workers) if max_replacements is None else max_replacements
        self._tickets = itertools.count()
        self._queue: deque[_Job] = deque()
        self._running: dict[ray.ObjectRef, tuple[int, list[_Job], object]] = {}  # slot, jobs, actor
        self._checks: dict[ray.ObjectRef, int] = {}  # info() calls on workers not up
        self._load = [0] * len(self.workers)
        self._up = [False] * len(self.workers)
        self.info: dict[int, dict] = {}  # each worker slot's latest info()
        self._done: list[tuple[int, EvalResult]] = []
        self._pin, self._last_error = None, None
        self.events = {"calls": 0, "retries": 0, "recovered": 0, "replaced": 0}
        self.events["lost_evaluations"] = 0
        for w, worker in enumerate(self.workers):
            self._checks[worker.info.remote()] = w

    # -- the Executor interface -------------------------------------------------------------

    def submit(self, index: int, arch: np.ndarray) -> None:
        self._queue.append(_Job(index, next(self._tickets), np.asarray(arch), self._pin))
        self._dispatch(flush=False)

    def poll(self, block: bool) -> list[tuple[int, EvalResult]]:
        while True:
            self._collect(block and not self._done, flush=block)
            if self._done or not block or not (self._running or self._queue):
                break
        done, self._done = self._done, []
        return done

    def pending(self) -> int:
        return len(self._queue) + len(self._running) + len(self._done)

    def new_round(self) -> None:
        if not self.sync:
            return
        self._await_start()
        if self.store is not None:
            self._pin = ray.get(self.store.pull_all.remote())

    # -- the rest ----------------------------------------------------------------------------

    def state(self) -> tuple[dict, dict]:
        """What a checkpoint keeps of a search on Ray: the shared weights' current version
        (``params``: its leaves; with few-shot, ``copies``: those of each copy)."""
        if self.store is None:
            return {}, {}
        pulled = ray.get(self.store.pull_all.remote())
        copies = [ray.get(ref) if isinstance(ref, ray.ObjectRef) else ref for _, ref in pulled]
        return shared_weight_arrays(copies), {}

    def load_state(self, arrays: dict, meta: dict) -> None:
        """Puts a checkpoint's shared weights into the store (the workers' optimizer states
        start again from the warm-up's)."""
        if self.store is not None:
            copies = shared_weight_copies(arrays)
            ray.get(self.store.load.remote([[np.asarray(p) for p in c] for c in copies]))

    def stats(self) -> dict:
        """Fault counts, the nodes used, and the weight store's version and staleness."""
        store = ray.get(self.store.stats.remote()) if self.store is not None else {}
        nodes = len({info["node"] for info in self.info.values()})
        return {**self.events, "workers_up": sum(self._up), "nodes": nodes, **store}

    def close(self) -> dict:
        """Ends the workers and the store; returns `stats()` from just before."""
        stats = self.stats()
        for actor in [*self.workers, self.store]:
            if actor is not None:
                ray.kill(actor)
        self._running.clear()
        return stats

    def _await_start(self) -> None:
        """Waits until each worker has answered once (or failed to start)."""
        deadline = time.monotonic() + self.start_timeout
        while any(w not in self.info for w in self._checks.values()):
            left = deadline - time.monotonic()
            ready, _ = ray.wait(list(self._checks), num_returns=1, timeout=max(left, 0))
            if not ready:
                raise RuntimeError(
                    f"synchronous rounds need every worker, but only {len(self.info)} of "
                    f"{len(self.workers)} started within {self.start_timeout:.0f} s; is the "
                    "cluster short of CPUs or GPUs for them? (ray status shows its resources)"
                )
            self._checked(ready[0])

    def _dispatch(self, flush: bool) -> None:
        """Sends queued jobs to free workers, `per_call` to a call. A shorter call goes only
        with `flush`: when the search loop is about to wait, so that no more jobs are coming."""
        waiting = deque()
        while self._queue:
            job = self._queue.popleft()
            w = self._pick(job)
            if w is None:
                waiting.append(job)
                continue
            jobs, others = [job], deque()
            while self._queue and len(jobs) < self.per_call:  # more for the same worker
                other = self._queue.popleft()
                (jobs if self._pick(other) == w else others).append(other)
            self._queue.extendleft(reversed(others))
            if len(jobs) < self.per_call and not flush:
                waiting.extend(jobs)
                continue
            actor = self.workers[w]
            calls = [(j.index, j.ticket, j.arch, j.pinned) for j in jobs]
            self._running[actor.evaluate_batch.remote(calls)] = (w, jobs, actor)
            self._load[w] += 1
            self.events["calls"] += 1
        self._queue = waiting

    def _pick(self, job: _Job) -> int | None:
        free = [
            w for w in range(len(self.workers)) if self._up[w] and self._load[w] < self.in_flight
        ]
        if self.sync:
            home = job.ticket % len(self.workers)
            if self._up[home]:
                return home if home in free else None
        return min(free, key=lambda w: self._load[w], default=None)

    def _collect(self, block: bool, flush: bool) -> None:
        self._dispatch(flush)
        refs = [*self._running, *self._checks]
        if not refs:
            if self._queue and flush:
                raise RuntimeError(
                    f"every Ray worker is dead and {self.max_replacements} replacements are "
                    f"used up; {len(self._queue)} evaluations cannot run. Last worker error: "
                    f"{self._last_error}"
                )
            return
        ready, _ = ray.wait(refs, num_returns=1, timeout=None if block else 0)
        if ready:  # take every other result that is ready too
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        for ref in ready:
            if ref in self._checks:
                self._checked(ref)
            else:
                self._finished(ref)
        self._dispatch(flush)

    def _finished(self, ref) -> None:
        w, jobs, actor = self._running.pop(ref)
        self._load[w] -= 1
        try:
            self._done.extend((job.index, result) for job, result in zip(jobs, ray.get(ref)))
        except WORKER_LOST as error:
            self._last_error = _short(error)
            for job in reversed(jobs):  # back to the front of the queue, in order
                job.attempts += 1
                self.events["retries"] += 1
                if job.attempts < self.max_attempts:
                    self._queue.appendleft(job)
                else:
                    self._fail(job, f"its worker died {job.attempts} times: {_short(error)}")
            if actor is self.workers[w]:  # not an actor already replaced
                self._check(w)
        except RayError as error:  # the worker's own code raised outside its guard
            for job in jobs:
                self._fail(job, _short(error))

    def _fail(self, job: _Job, error: str) -> None:
        self.events["lost_evaluations"] += 1
        self._done.append((job.index, EvalResult(float("nan"), 0, 0.0, error)))
        if self.store is not None:  # the ticket will not be pushed by a worker now
            self.store.push.remote(job.ticket, None, -1)

    def _check(self, w: int) -> None:
        """Stops sending work to worker `w` until it answers (Ray restarts it if it can)."""
        if self._up[w]:
            self._up[w] = False
            self._checks[self.workers[w].info.remote()] = w

    def _checked(self, ref) -> None:
        w = self._checks.pop(ref)
        try:
            info = ray.get(ref)
        except ray.exceptions.ActorDiedError as error:
            self._last_error = _short(error)
            if self._replace is None or self.events["replaced"] >= self.max_replacements:
                return  # slot `w` stays down
            self.events["replaced"] += 1
            self.workers[w] = self._replace(w)
            self._checks[self.workers[w].info.remote()] = w
            return
        except RayActorError:  # unavailable for now (restarting): ask again shortly
            time.sleep(0.2)
            self._checks[self.workers[w].info.remote()] = w
            return
        except RayError as error:  # its constructor raised: the slot stays down
            self._last_error = _short(error)
            return
        self._up[w] = True
        if w in self.info:
            self.events["recovered"] += 1
        self.info[w] = info


def _short(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:500]
