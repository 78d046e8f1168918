"""The supernet's weights that every Ray worker trains: a versioned store.

Consistency model (asynchronous updates, bounded staleness in practice, no locks):

- The store holds the supernet parameters as a list of float arrays (the leaves of the
  parameter pytree; each worker rebuilds the tree with its own, identical, structure). The
  supernet has no BatchNorm running statistics, so the parameters are its whole state.
- A worker *pulls* ``(version, ref)``: the version number and a reference to the weights, put
  into the Ray object store once per version and only when someone asks for it. A worker that
  already holds that version does not fetch it again.
- It trains its architecture's path from the version it pulled and *pushes* the difference
  (new weights minus pulled weights). The store adds the delta to its current weights, which
  may already hold other workers' updates (Hogwild-style: updates are never rejected or
  rebased), and bumps the version. The *staleness* of an update is the number of updates applied
  between its pull and its push: about the number of evaluations that finished elsewhere while
  it ran, so at most ``workers - 1`` when evaluations take equal time. It is not enforced; the
  store measures it (`stats`).
- Each worker keeps its own optimizer state (momentum, the schedule's step count), started from
  the state after warm-up (`initial_opt_state`); a restarted or new worker starts from that again.
  Only parameters are shared: optimizer moments computed against stale weights stay local.
- Every push carries the evaluation's *ticket* (a sequence number from the driver): a ticket
  is applied once, so an evaluation re-run after its worker died cannot count twice.
- ``ordered=True`` (synchronous rounds) applies the pushes in ticket order, holding back the
  early arrivals, so that the weights after a round, and so the whole search, do not depend on
  which worker finished first. A failed evaluation pushes ``None`` to let the order move on.

- With few-shot weight sharing the store holds one copy of the weights per op of the first
  edge; each copy is versioned, pulled, pushed and pinned on its own, and an architecture
  trains the copy of its first edge's op (see `SharedWeightsEvaluator.copy_of`).

The store is a single actor and is not restarted: losing it loses the weights (checkpoints of
the run directory are how a search survives that).
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass
class _Copy:
    """One copy of the weights: its leaves, version, and the object-store ref of that version."""

    params: list[np.ndarray]
    opt_state: list
    version: int = 0
    ref: object = None
    ref_version: int = -1


class WeightStore:
    """Versioned supernet weights; run it as a Ray actor (`ray.remote(WeightStore)`).

    It holds one copy of the weights, or with few-shot weight sharing one per op of the first
    edge: each copy is versioned on its own, and a pull, push or pin names its copy (0 when
    there is one).

    Args:
      ordered: apply pushes in ticket order (synchronous rounds) instead of arrival order.
    """

    def __init__(self, *, ordered: bool = False):
        self.ordered = ordered
        self._copies: list[_Copy] = []
        self._next_ticket, self._held = 0, {}  # ordered mode: the next ticket to apply, early ones
        self._seen: set[int] = set()  # arrival mode: tickets already applied
        self._stats = {"updates": 0, "skipped": 0, "duplicates": 0, "staleness_sum": 0}
        self._stats["staleness_max"] = 0

    def initialize(self, copies: list[list], opt_states: list[list]) -> int:
        """Sets each copy's weights (version 0) and the optimizer state every worker starts
        that copy from: the leaves of each, one list per copy."""
        if len(copies) != len(opt_states) or not copies:
            raise ValueError(
                f"initialize: {len(copies)} copies of the weights and {len(opt_states)} "
                "optimizer states; give one of each per copy"
            )
        self._copies = [
            _Copy([np.array(p, copy=True) for p in params], list(opt_state))  # our own copies
            for params, opt_state in zip(copies, opt_states)
        ]
        return 0

    def load(self, copies: list[list]) -> None:
        """Replaces each copy's weights (a resumed search's checkpoint) as a new version."""
        self._check()
        shapes = [[np.shape(p) for p in params] for params in copies]
        if shapes != [[p.shape for p in c.params] for c in self._copies]:
            raise ValueError("load: the weights are not those of this supernet")
        for c, params in zip(self._copies, copies):
            c.params = [np.array(p, copy=True) for p in params]
            c.version += 1

    def pull(self, copy: int = 0) -> tuple[int, object]:
        """The current version of a copy and its weights: a Ray `ObjectRef` inside an actor,
        else a list."""
        self._check()
        c = self._copies[copy]
        if c.ref_version != c.version:
            c.ref, c.ref_version = _put([p.copy() for p in c.params]), c.version
        return c.version, c.ref

    def pull_all(self) -> list[tuple[int, object]]:
        """`pull` of every copy: what a synchronous round pins."""
        return [self.pull(copy) for copy in range(len(self._copies))]

    def initial_opt_state(self, copy: int = 0) -> list:
        """The optimizer state of a copy after warm-up (its leaves), for a worker's first
        evaluation on that copy."""
        self._check()
        return self._copies[copy].opt_state

    def push(self, ticket: int, delta: list | None, base_version: int, copy: int = 0) -> int:
        """Applies evaluation `ticket`'s update `delta` (None: nothing) to a copy; returns the
        copy's version.

        Args:
          ticket: the evaluation's sequence number; a ticket seen before is ignored.
          delta: new weights minus the pulled weights, leaf by leaf, or None.
          base_version: the copy's version the update was computed from (for the staleness).
          copy: the copy the update trained.
        """
        self._check()
        if not self.ordered:
            if ticket in self._seen:
                self._stats["duplicates"] += 1
            else:
                self._seen.add(ticket)
                self._apply(delta, base_version, copy)
            return self._copies[copy].version
        if ticket < self._next_ticket or ticket in self._held:
            self._stats["duplicates"] += 1
            return self._copies[copy].version
        self._held[ticket] = (delta, base_version, copy)
        while self._next_ticket in self._held:
            self._apply(*self._held.pop(self._next_ticket))
            self._next_ticket += 1
        return self._copies[copy].version

    def stats(self) -> dict:
        """The versions (summed over the copies), updates applied, skipped and duplicate
        pushes, and update staleness."""
        updates = self._stats["updates"]
        mean = self._stats["staleness_sum"] / updates if updates else 0.0
        return {
            "version": sum(c.version for c in self._copies),
            "copies": len(self._copies),
            "updates": updates,
            "skipped": self._stats["skipped"],
            "duplicates": self._stats["duplicates"],
            "held": len(self._held),
            "staleness_mean": round(mean, 3),
            "staleness_max": self._stats["staleness_max"],
        }

    def _apply(self, delta, base_version, copy) -> None:
        if delta is None:
            self._stats["skipped"] += 1
            return
        c = self._copies[copy]
        if len(delta) != len(c.params):
            raise ValueError(
                f"push: delta has {len(delta)} leaves, the weights have "
                f"{len(c.params)}; the worker built a different supernet"
            )
        for p, d in zip(c.params, delta):
            p += d
        staleness = c.version - base_version
        self._stats["updates"] += 1
        self._stats["staleness_sum"] += staleness
        self._stats["staleness_max"] = max(self._stats["staleness_max"], staleness)
        c.version += 1

    def _check(self):
        if not self._copies:
            raise RuntimeError("WeightStore: no weights yet; a worker's warmup() initializes it")


def _put(value):
    """`ray.put(value)` inside a Ray worker or driver; the value itself without Ray."""
    import ray

    return ray.put(value) if ray.is_initialized() else value
