"""Datasets and minibatches for the search: loaders, seeded disjoint splits and batch streams.

Every loader returns a `Dataset` of NumPy arrays: images NHWC float32 (flat features stay
(N, F)), labels int32 in 0..num_classes-1, standardized with statistics of the train split only
so no validation or test information leaks into training. Splits are stratified seeded
permutations, disjoint by construction. `batches` walks one epoch; `BatchStream` is the endless,
resumable stream the evaluators train from.
"""

from __future__ import annotations

import dataclasses
import gzip
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_INSTALL = (
    "install it with: apt-get install dataset-fashion-mnist (Debian package), or pass root=..."
)
# The Debian package puts the files directly in the root; a clone of the upstream repository
# keeps them in data/fashion.
_FASHION_MNIST_DIRS = (".", "data/fashion")
_FASHION_MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
# The idx format's third magic byte names the element type; all are big-endian.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


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


def load_digits(*, val_fraction: float = 0.2, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """scikit-learn's 8x8 handwritten digits (1797 images, 10 classes; ships with the package).

    Args:
      val_fraction: the fraction of all images held out for validation.
      test_fraction: the fraction of all images held out for testing.
      seed: seeds the stratified split.

    Returns:
      A `Dataset` of (N, 8, 8, 1) images.
    """
    from sklearn.datasets import load_digits as sklearn_digits

    _check_fractions(val_fraction, test_fraction)
    raw = sklearn_digits()
    # Pixels are counts 0..16 of set bits in a 4x4 block of the original bitmap.
    x, y = _check_arrays(
        "scikit-learn digits",
        raw.data.reshape(-1, 8, 8, 1) / 16.0,
        raw.target,
        "all",
        num_classes=10,
    )
    fractions = (1 - val_fraction - test_fraction, val_fraction, test_fraction)
    train, val, test = split_indices(len(y), fractions, seed, labels=y)
    return _standardized("digits", 10, (x[train], y[train]), (x[val], y[val]), (x[test], y[test]))


def _read_idx(path: Path) -> np.ndarray:
    """The array in an idx file (the MNIST format), gzip-compressed when its name ends in .gz."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(
            f"{path}: header {data[:4].hex()} is not an idx magic number; expected 0000 then a "
            f"type byte ({', '.join(f'{t:02x}' for t in _IDX_DTYPES)}) and the number of "
            f"dimensions. Re-download or reinstall the file."
        )
    dtype, ndim = np.dtype(_IDX_DTYPES[data[2]]), data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(
            f"{path}: ends after {len(data)} bytes, inside its header of {header} bytes; the "
            f"file is truncated: re-download or reinstall it."
        )
    shape = tuple(int(d) for d in np.frombuffer(data[4:header], dtype=">u4"))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(
            f"{path}: {len(data)} bytes; its header promises shape {shape} of {dtype}, "
            f"{expected} bytes. The file is truncated or corrupt: re-download or reinstall it."
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def _find_idx(root: Path, stem: str) -> Path:
    """The file `stem` (or `stem`.gz) directly in `root` or in one of its known subfolders."""
    candidates = [
        root / folder / name for folder in _FASHION_MNIST_DIRS for name in (stem + ".gz", stem)
    ]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"Fashion-MNIST file {stem}.gz (or uncompressed {stem}) is missing: looked for "
        f"{', '.join(str(p) for p in candidates)}; {FASHION_MNIST_INSTALL}"
    )


def load_fashion_mnist(
    root: str | Path = FASHION_MNIST_ROOT, *, val_size: int = 5000, seed: int = 0
) -> Dataset:
    """Zalando's Fashion-MNIST (28x28 grayscale, 10 classes) from its official idx files.

    Args:
      root: the folder with the four idx files (.gz or uncompressed), directly or in
        data/fashion; the default is where the Debian package dataset-fashion-mnist puts them.
      val_size: training images held out for validation (stratified, seeded).
      seed: seeds the validation split.

    Returns:
      A `Dataset` of (N, 28, 28, 1) images: the official 10,000 test images, and the official
      training images less `val_size` for training.

    Raises:
      FileNotFoundError: when `root` or one of the files is missing, saying how to install it.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"Fashion-MNIST folder {root} does not exist; {FASHION_MNIST_INSTALL}"
        )
    arrays = {}
    for split in ("train", "test"):
        x_path = _find_idx(root, _FASHION_MNIST_FILES[f"x_{split}"])
        y_path = _find_idx(root, _FASHION_MNIST_FILES[f"y_{split}"])
        x, y = _read_idx(x_path), _read_idx(y_path)
        if x.dtype != np.uint8 or x.ndim != 3:
            raise ValueError(
                f"x_{split} in {x_path}: {x.ndim}-D {x.dtype} array; expected (N, 28, 28) "
                f"unsigned bytes. Reinstall the official file."
            )
        arrays[split] = _check_arrays(
            str(x_path.parent), x / np.float32(255), y, split, num_classes=10
        )
    (x_train, y_train), test = arrays["train"], arrays["test"]
    if not 0 < val_size < len(y_train):
        raise ValueError(
            f"val_size={val_size}: expected between 1 and {len(y_train) - 1}, the number of "
            f"training images less one."
        )
    val_fraction = val_size / len(y_train)
    train, val = split_indices(len(y_train), (1 - val_fraction, val_fraction), seed, labels=y_train)
    return _standardized(
        "fashion_mnist", 10, (x_train[train], y_train[train]), (x_train[val], y_train[val]), test
    )


def load_npz(
    path: str | Path, *, val_fraction: float = 0.2, test_fraction: float = 0.2, seed: int = 0
) -> Dataset:
    """A user's own arrays from an .npz file: x_train, y_train and optionally x_test, y_test.

    Args:
      path: the .npz file. x arrays are (N, H, W, C) images, (N, H, W) grayscale images (a
        channel axis is added) or (N, F) features; y arrays are class indices 0..K-1.
      val_fraction: the fraction of x_train held out for validation.
      test_fraction: without x_test, the fraction of x_train held out for testing; ignored
        otherwise.
      seed: seeds the stratified splits.

    Returns:
      A `Dataset` named after the file, with K = the largest label plus one classes.

    Raises:
      KeyError: when a required key is missing, listing the keys the file has.
      ValueError: naming the array that is malformed and what was expected.
    """
    path = Path(path)
    _check_fractions(val_fraction, test_fraction)
    npz = np.load(path, allow_pickle=False)
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ValueError(
            f"{path}: holds a single array, not an .npz archive; expected keys x_train, y_train "
            f"(and optionally x_test, y_test). Save it with np.savez(path, x_train=..., ...)."
        )
    with npz:
        present = sorted(npz.files)
        has_test = "x_test" in present or "y_test" in present
        required = ["x_train", "y_train"] + (["x_test", "y_test"] if has_test else [])
        missing = [key for key in required if key not in present]
        if missing:
            raise KeyError(
                f"{path}: missing key(s) {', '.join(missing)}; the file has {present}. Save it "
                f"with np.savez(path, x_train=..., y_train=...[, x_test=..., y_test=...])."
            )
        raw = {key: npz[key] for key in required}
    x, y = _check_arrays(path.name, raw["x_train"], raw["y_train"], "train")
    if has_test:
        x_test, y_test = _check_arrays(path.name, raw["x_test"], raw["y_test"], "test")
        if x_test.shape[1:] != x.shape[1:]:
            raise ValueError(
                f"x_test in {path.name}: examples of shape {x_test.shape[1:]}; expected "
                f"{x.shape[1:]}, the shape of the examples in x_train."
            )
        train, val = split_indices(len(y), (1 - val_fraction, val_fraction), seed, labels=y)
        test = (x_test, y_test)
    else:
        fractions = (1 - val_fraction - test_fraction, val_fraction, test_fraction)
        train, val, test_idx = split_indices(len(y), fractions, seed, labels=y)
        test = (x[test_idx], y[test_idx])
    num_classes = int(max(y.max(), test[1].max())) + 1
    return _standardized(path.stem, num_classes, (x[train], y[train]), (x[val], y[val]), test)


def synthetic_cifar(
    *,
    n_train: int = 2048,
    n_val: int = 512,
    n_test: int = 512,
    seed: int = 0,
    num_classes: int = 10,
    image_shape: tuple[int, int, int] = (32, 32, 3),
) -> Dataset:
    """CIFAR-10-shaped images made from the seed, learnable but not trivially, for benchmarks.

    Each class has a random template: smooth blobs plus fine texture. An example is its class's
    template at a random contrast, shifted by up to 2 pixels, under Gaussian noise, so a
    convolutional net has to learn translation-tolerant features.

    Args:
      n_train: training examples.
      n_val: validation examples.
      n_test: test examples.
      seed: the same seed gives the same arrays.
      num_classes: the number of classes (and templates).
      image_shape: (H, W, C) of each image.

    Returns:
      A `Dataset` named "synthetic_cifar".
    """
    if min(n_train, n_val, n_test) < 1 or num_classes < 2:
        raise ValueError(
            f"n_train={n_train}, n_val={n_val}, n_test={n_test}, num_classes={num_classes}: "
            f"expected at least one example per split and at least 2 classes."
        )
    if len(image_shape) != 3 or min(image_shape) < 1:
        raise ValueError(f"image_shape={image_shape}: expected (H, W, C), all positive.")
    h, w, c = image_shape
    rng = np.random.default_rng(seed)
    coarse_h, coarse_w = max(h // 4, 1), max(w // 4, 1)
    coarse = rng.normal(size=(num_classes, coarse_h, coarse_w, c))
    rows, cols = np.arange(h) * coarse_h // h, np.arange(w) * coarse_w // w
    templates = coarse[:, rows][:, :, cols] + 0.5 * rng.normal(size=(num_classes, h, w, c))

    def make(n, which):
        y = rng.integers(0, num_classes, size=n)
        contrast = rng.uniform(0.5, 1.5, size=(n, 1, 1, 1))
        x = contrast * templates[y] + rng.normal(scale=1.5, size=(n, h, w, c))
        shifts = rng.integers(-2, 3, size=(n, 2))
        for dy, dx in np.unique(shifts, axis=0):
            group = (shifts == (dy, dx)).all(axis=1)
            x[group] = np.roll(x[group], (dy, dx), axis=(1, 2))
        return _check_arrays("synthetic_cifar", x, y, which, num_classes)

    train, val, test = make(n_train, "train"), make(n_val, "val"), make(n_test, "test")
    return _standardized("synthetic_cifar", num_classes, train, val, test)


DATASETS: dict[str, Callable[..., Dataset]] = {
    "digits": load_digits,
    "fashion_mnist": load_fashion_mnist,
    "synthetic_cifar": synthetic_cifar,
}


def load_dataset(name: str, **kwargs) -> Dataset:
    """The dataset registered as `name` in `DATASETS`, or the .npz file `name` via `load_npz`.

    Args:
      name: a key of `DATASETS`, or a path ending in ".npz".
      **kwargs: passed to the loader.

    Returns:
      The loaded `Dataset`.
    """
    if name.endswith(".npz"):
        return load_npz(name, **kwargs)
    if name not in DATASETS:
        raise ValueError(
            f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}, or a path to an "
            f".npz file."
        )
    return DATASETS[name](**kwargs)


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

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> tuple[np.ndarray, np.ndarray]:
        return self.next()
