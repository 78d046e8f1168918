"""Dataset loaders (digits, Fashion-MNIST, .npz files, synthetic CIFAR) and their registry."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from nas.data.dataset import Dataset, _check_arrays, _check_fractions, _standardized, split_indices
from nas.data.idx import _read_idx

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
