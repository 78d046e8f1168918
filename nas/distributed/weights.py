"""The one copy of the supernet's weights that every Ray worker trains: a versioned store.

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

The store is a single actor and is not restarted: losing it loses the weights (checkpoints of
the run directory are how a search survives that).
"""

from __future__ import annotations

import numpy as np


class WeightStore:
    """Versioned supernet weights; run it as a Ray actor (`ray.remote(WeightStore)`).

    Args:
      ordered: apply pushes in ticket order (synchronous rounds) instead of arrival order.
    """

    def __init__(self, *, ordered: bool = False):
        self.ordered = ordered
        self.version = -1
        self._params: list[np.ndarray] | None = None
        self._opt_state: list | None = None
        self._ref, self._ref_version = None, -1
        self._next_ticket, self._held = 0, {}  # ordered mode: the next ticket to apply, early ones
        self._seen: set[int] = set()  # arrival mode: tickets already applied
        self._stats = {"updates": 0, "skipped": 0, "duplicates": 0, "staleness_sum": 0}
        self._stats["staleness_max"] = 0

    def initialize(self, params: list, opt_state: list) -> int:
        """Sets the weights (version 0) and the optimizer state every worker starts from."""
        self._params = [np.array(p, copy=True) for p in params]  # writable copies of our own
        self._opt_state = list(opt_state)
        self.version = 0
        return self.version

    def load(self, params: list) -> int:
        """Replaces the weights (a resumed search's checkpoint) as a new version."""
        self._check()
        if [np.shape(p) for p in params] != [p.shape for p in self._params]:
            raise ValueError("load: the weights are not those of this supernet")
        self._params = [np.array(p, copy=True) for p in params]
        self.version += 1
        return self.version

    def pull(self) -> tuple[int, object]:
        """The current version and its weights: a Ray `ObjectRef` inside an actor, else a list."""
        self._check()
        if self._ref_version != self.version:
            self._ref, self._ref_version = _put([p.copy() for p in self._params]), self.version
        return self.version, self._ref

    def initial_opt_state(self) -> list:
        """The optimizer state after warm-up (its leaves), for a worker's first evaluation."""
        self._check()
        return self._opt_state

    def push(self, ticket: int, delta: list | None, base_version: int) -> int:
        """Applies evaluation `ticket`'s update `delta` (None: nothing); returns the version.

        Args:
          ticket: the evaluation's sequence number; a ticket seen before is ignored.
          delta: new weights minus the pulled weights, leaf by leaf, or None.
          base_version: the version the update was computed from (for the staleness measure).
        """
        self._check()
        if not self.ordered:
            if ticket in self._seen:
                self._stats["duplicates"] += 1
            else:
                self._seen.add(ticket)
                self._apply(delta, base_version)
            return self.version
        if ticket < self._next_ticket or ticket in self._held:
            self._stats["duplicates"] += 1
            return self.version
        self._held[ticket] = (delta, base_version)
        while self._next_ticket in self._held:
            self._apply(*self._held.pop(self._next_ticket))
            self._next_ticket += 1
        return self.version

    def stats(self) -> dict:
        """The version, updates applied, skipped and duplicate pushes, and update staleness."""
        updates = self._stats["updates"]
        mean = self._stats["staleness_sum"] / updates if updates else 0.0
        return {
            "version": self.version,
            "updates": updates,
            "skipped": self._stats["skipped"],
            "duplicates": self._stats["duplicates"],
            "held": len(self._held),
            "staleness_mean": round(mean, 3),
            "staleness_max": self._stats["staleness_max"],
        }

    def _apply(self, delta, base_version) -> None:
        if delta is None:
            self._stats["skipped"] += 1
            return
        if len(delta) != len(self._params):
            raise ValueError(
                f"push: delta has {len(delta)} leaves, the weights have "
                f"{len(self._params)}; the worker built a different supernet"
            )
        for p, d in zip(self._params, delta):
            p += d
        staleness = self.version - base_version
        self._stats["updates"] += 1
        self._stats["staleness_sum"] += staleness
        self._stats["staleness_max"] = max(self._stats["staleness_max"], staleness)
        self.version += 1

    def _check(self):
        if self._params is None:
            raise RuntimeError("WeightStore: no weights yet; a worker's warmup() initializes it")


def _put(value):
    """`ray.put(value)` inside a Ray worker or driver; the value itself without Ray."""
    import ray

    return ray.put(value) if ray.is_initialized() else value
