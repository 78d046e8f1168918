"""The `Dataset` container, shared array checks, seeded stratified splits and standardization."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """Train/validation/test splits as NumPy arrays; images NHWC float32, labels int32."""

    name: str
    x_train: np.ndarray = dataclasses.field(repr=False)
    y_train: np.ndarray = dataclasses.field(repr=False)
    x_val: np.ndarray = dataclasses.field(repr=False)
    y_val: np.ndarray = dataclasses.field(repr=False)
    x_test: np.ndarray = dataclasses.field(repr=False)
    y_test: np.ndarray = dataclasses.field(repr=False)
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one example, e.g. (8, 8, 1) for digits."""
        return tuple(self.x_train.shape[1:])


def _check_arrays(
    source: str, x, y, which: str, num_classes: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Validates one split's examples and labels and converts them to the `Dataset` layout.

    Args:
      source: where the arrays came from (a file name), quoted in every error.
      x: examples: (N, H, W, C) images, (N, H, W) grayscale images or (N, F) features.
      y: integer labels, shape (N,).
      which: the split's name; errors call the arrays ``x_{which}`` and ``y_{which}``.
      num_classes: labels must be below this; None checks only that they are non-negative.

    Returns:
      (x, y): x float32 with a channel axis added to 3-D grayscale images, y int32.

    Raises:
      ValueError: naming the array, what is wrong with it and what was expected.
    """
    x_name, y_name = f"x_{which} in {source}", f"y_{which} in {source}"
    x, y = np.asarray(x), np.asarray(y)
    for name, a in ((x_name, x), (y_name, y)):
        if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
            raise ValueError(
                f"{name}: dtype {a.dtype} is not numeric; expected integer or floating values. "
                f"Convert it with np.asarray(..., dtype=np.float32) before saving."
            )
        if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all():
            raise ValueError(
                f"{name}: holds {np.count_nonzero(~np.isfinite(a))} NaN or infinite values; "
                f"expected finite values. Drop or impute those entries."
            )
    if x.ndim not in (2, 3, 4):
        raise ValueError(
            f"{x_name}: shape {x.shape} is {x.ndim}-D; expected (N, H, W, C) images, "
            f"(N, H, W) grayscale images or (N, F) features."
        )
    if y.ndim != 1:
        raise ValueError(
            f"{y_name}: shape {y.shape} is {y.ndim}-D; expected one label per example, shape "
            f"(N,). Flatten it with y.reshape(-1) if it holds one label per row."
        )
    if len(x) != len(y):
        raise ValueError(
            f"{y_name}: {len(y)} labels for {len(x)} examples in x_{which}; expected one label "
            f"per example."
        )
    if len(x) == 0:
        raise ValueError(f"{x_name}: has no examples; expected at least one.")
    if np.issubdtype(y.dtype, np.floating) and not np.array_equal(y, np.round(y)):
        raise ValueError(
            f"{y_name}: holds non-integer values such as {y[y != np.round(y)][0]}; expected "
            f"class indices 0..K-1."
        )
    if y.min() < 0 or (num_classes is not None and y.max() >= num_classes):
        expected = "0..K-1" if num_classes is None else f"0..{num_classes - 1}"
        raise ValueError(
            f"{y_name}: labels range over {y.min()}..{y.max()}; expected class indices "
            f"{expected}. Map the classes to consecutive integers from 0."
        )
    if x.ndim == 3:
        x = x[..., None]
    return x.astype(np.float32, copy=False), y.astype(np.int32, copy=False)


def split_indices(
    n: int, fractions: Sequence[float], seed: int, *, labels: np.ndarray | None = None
) -> tuple[np.ndarray, ...]:
    """Splits range(n) into disjoint index sets of the given fractions, seeded and stratified.

    Args:
      n: the number of examples.
      fractions: one positive fraction per split, summing to 1.
      seed: the same seed gives the same splits.
      labels: when given, each split gets each class in (nearly) the global proportion.

    Returns:
      One sorted int64 index array per split; together they hold every index exactly once.
    """
    fractions = np.asarray(fractions, dtype=np.float64)
    if fractions.ndim != 1 or (fractions <= 0).any() or not np.isclose(fractions.sum(), 1.0):
        raise ValueError(
            f"split fractions {fractions.tolist()}: expected positive fractions summing to 1."
        )
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    if labels is not None:
        # Rank each example by its quantile within its class (random order inside a class),
        # so every contiguous cut of the ranking holds each class in proportion.
        classes = np.asarray(labels)[order]
        by_class = np.argsort(classes, kind="stable")
        _, first, counts = np.unique(classes[by_class], return_index=True, return_counts=True)
        class_of = np.repeat(np.arange(len(counts)), counts)
        quantile = (np.arange(n) - first[class_of] + 0.5) / counts[class_of]
        order = order[by_class][np.lexsort((rng.random(n), quantile))]
    cuts = np.round(np.cumsum(fractions)[:-1] * n).astype(int)
    parts = tuple(np.sort(part) for part in np.split(order, cuts))
    if any(len(part) == 0 for part in parts):
        raise ValueError(
            f"split fractions {fractions.tolist()} of {n} examples leave a split empty; "
            f"use larger fractions or more examples."
        )
    return parts


def _standardized(name: str, num_classes: int, train: tuple, val: tuple, test: tuple) -> Dataset:
    """A `Dataset` whose examples are standardized per channel (or feature) with train stats."""
    axes = tuple(range(train[0].ndim - 1))
    # float32 arithmetic with float64 accumulators: exact enough, and no float64 copy of the
    # images (Fashion-MNIST's would take 350 MB).
    mean = train[0].mean(axis=axes, dtype=np.float64).astype(np.float32)
    centered = train[0] - mean
    var = np.mean(centered * centered, axis=axes, dtype=np.float64)
    # A constant channel or feature (e.g. an always-blank pixel of flat features) has nothing
    # to scale.
    std = np.where(var < 1e-16, 1.0, np.sqrt(var)).astype(np.float32)

    def scale(x):
        out = x - mean
        out /= std
        return out

    return Dataset(
        name,
        scale(train[0]),
        train[1],
        scale(val[0]),
        val[1],
        scale(test[0]),
        test[1],
        num_classes,
    )


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    if val_fraction <= 0 or test_fraction <= 0 or val_fraction + test_fraction >= 1:
        raise ValueError(
            f"val_fraction={val_fraction}, test_fraction={test_fraction}: expected each above 0 "
            f"and together below 1, leaving examples to train on."
        )
