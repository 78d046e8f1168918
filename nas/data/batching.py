"""Minibatches: one epoch of them with `batches`, an endless resumable `BatchStream`."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def _generator(key_or_seed) -> np.random.Generator:
    """A NumPy generator from an int seed, a Generator (used as is) or a JAX PRNG key."""
    if isinstance(key_or_seed, np.random.Generator):
        return key_or_seed
    if isinstance(key_or_seed, int | np.integer) and not isinstance(key_or_seed, bool):
        return np.random.default_rng(int(key_or_seed))
    import jax

    if isinstance(key_or_seed, jax.Array):
        if jax.dtypes.issubdtype(key_or_seed.dtype, jax.dtypes.prng_key):
            key_or_seed = jax.random.key_data(key_or_seed)
        return np.random.default_rng(np.asarray(key_or_seed, dtype=np.uint32).ravel())
    raise TypeError(
        f"key_or_seed={key_or_seed!r}: expected an int seed, a numpy Generator or a JAX PRNG key."
    )


def batches(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    *,
    key_or_seed=None,
    shuffle: bool = True,
    drop_last: bool = True,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One epoch of minibatches of (x, y).

    Args:
      x: examples, indexed along the first axis.
      y: labels, one per example.
      batch_size: examples per batch.
      key_or_seed: an int seed, a numpy Generator or a JAX PRNG key; the same seed gives the
        same order. Required when `shuffle`.
      shuffle: visit the examples in a seeded random order instead of in order.
      drop_last: skip the final batch when it would be smaller than `batch_size`.

    Returns:
      An iterator of (xb, yb) pairs; arguments are checked at the call, not at the first batch.
    """
    n = len(x)
    if len(y) != n:
        raise ValueError(f"batches: y has {len(y)} labels for {n} examples in x; expected {n}.")
    if batch_size < 1 or (drop_last and batch_size > n):
        raise ValueError(
            f"batches: batch_size={batch_size} with {n} examples and drop_last={drop_last} "
            f"gives no batch; expected 1 <= batch_size <= {n}, or drop_last=False."
        )
    if shuffle and key_or_seed is None:
        raise ValueError("batches: shuffle=True needs key_or_seed (an int seed or a Generator).")
    order = _generator(key_or_seed).permutation(n) if shuffle else np.arange(n)
    stop = n - n % batch_size if drop_last else n
    return (
        (x[order[i : i + batch_size]], y[order[i : i + batch_size]])
        for i in range(0, stop, batch_size)
    )


class BatchStream:
    """Endless, seeded stream of training minibatches over (x, y).

    It reshuffles each epoch and always returns full batches of `batch_size`: the examples left
    over at the end of an epoch are skipped (a different few each epoch). Each epoch's order
    depends only on (seed, epoch), so the position `state()` returns, three plain ints, is all
    that a resumed search needs to continue the same batch sequence.

    Args:
      x: examples, indexed along the first axis.
      y: labels, one per example.
      batch_size: examples per batch, at most len(x).
      seed: seeds every epoch's order.
      state: a dict from `state()` to resume from; its seed must equal `seed`.
    """

    def __init__(self, x, y, batch_size: int, *, seed: int = 0, state: dict | None = None):
        if len(x) != len(y):
            raise ValueError(
                f"BatchStream: y has {len(y)} labels for {len(x)} examples in x; expected {len(x)}."
            )
        if not 1 <= batch_size <= len(x):
            raise ValueError(
                f"BatchStream: batch_size={batch_size} but x has {len(x)} examples; expected "
                f"1 <= batch_size <= {len(x)}. Lower the batch size or use more training data."
            )
        self.x, self.y, self.batch_size, self.seed = x, y, batch_size, int(seed)
        self.epoch, self.index = 0, 0
        if state is not None:
            self._restore(state)
        self._order = self._epoch_order()

    def _restore(self, state: dict) -> None:
        if set(state) != {"seed", "epoch", "index"}:
            raise ValueError(
                f"BatchStream state {state}: expected exactly the keys seed, epoch, index as "
                f"returned by BatchStream.state()."
            )
        if state["seed"] != self.seed:
            raise ValueError(
                f"BatchStream state {state}: seed {state['seed']} differs from seed={self.seed}; "
                f"pass seed={state['seed']} to continue that stream."
            )
        if state["epoch"] < 0 or not 0 <= state["index"] <= len(self.x):
            raise ValueError(
                f"BatchStream state {state}: expected epoch >= 0 and 0 <= index <= "
                f"{len(self.x)} (the number of examples)."
            )
        self.epoch, self.index = int(state["epoch"]), int(state["index"])

    def _epoch_order(self) -> np.ndarray:
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.x))

    def state(self) -> dict[str, int]:
        """The stream's position: {"seed", "epoch", "index"} as plain ints."""
        return {"seed": self.seed, "epoch": self.epoch, "index": self.index}

    def next(self) -> tuple[np.ndarray, np.ndarray]:
        """The next (xb, yb) batch, starting a freshly shuffled epoch when this one runs out."""
        if self.index + self.batch_size > len(self.x):
            self.epoch, self.index = self.epoch + 1, 0
            self._order = self._epoch_order()
        idx = self._order[self.index : self.index + self.batch_size]
        self.index += self.batch_size
        return self.x[idx], self.y[idx]

    def take(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The next `n` (at least 1) batches, stacked along a new leading axis (for
        `Trainer.train_steps`)."""
        if n < 1:
            raise ValueError(f"BatchStream.take: n={n}; expected at least 1 batch")
        xs, ys = zip(*(self.next() for _ in range(n)))
        return np.stack(xs), np.stack(ys)

    def chunks(self, n: int, size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The next `n` batches as `take` gives them, at most `size` at a time."""
        for start in range(0, n, size):
            yield self.take(min(size, n - start))

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> tuple[np.ndarray, np.ndarray]:
        return self.next()
