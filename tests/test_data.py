"""Tests for nas.data: loaders, splits, validation errors and batch streams."""

import gzip
import itertools
import struct
from pathlib import Path

import numpy as np
import pytest

from nas.data import (
    DATASETS,
    FASHION_MNIST_ROOT,
    BatchStream,
    Dataset,
    batches,
    load_dataset,
    load_digits,
    load_fashion_mnist,
    load_npz,
    split_indices,
    synthetic_cifar,
)


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_digits()


def _rows(x: np.ndarray) -> set[bytes]:
    return {row.tobytes() for row in x.reshape(len(x), -1)}


def test_digits_shapes_classes_and_standardization(digits):
    assert digits.name == "digits"
    assert digits.input_shape == (8, 8, 1)
    assert digits.num_classes == 10
    sizes = len(digits.x_train), len(digits.x_val), len(digits.x_test)
    assert sum(sizes) == 1797
    assert sizes[1] == pytest.approx(0.2 * 1797, abs=1) and sizes[2] == pytest.approx(
        0.2 * 1797, abs=1
    )
    for x, y in (
        (digits.x_train, digits.y_train),
        (digits.x_val, digits.y_val),
        (digits.x_test, digits.y_test),
    ):
        assert x.dtype == np.float32 and y.dtype == np.int32 and len(x) == len(y)
        assert set(np.unique(y)) == set(range(10))  # stratified: every class in every split
    assert abs(float(digits.x_train.mean())) < 1e-5
    assert float(digits.x_train.std()) == pytest.approx(1.0, abs=1e-4)
    # Statistics come from the train split only, so the other splits are not exactly standard.
    assert float(digits.x_val.mean()) != pytest.approx(0.0, abs=1e-5)


def test_digits_splits_disjoint_and_seeded(digits):
    # Digits has a few duplicate images, so disjointness is checked on indices, not pixels.
    n, fractions = 1797, (0.6, 0.2, 0.2)
    labels = np.arange(n) % 10
    parts = split_indices(n, fractions, seed=0, labels=labels)
    assert sum(len(p) for p in parts) == n
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(n))
    for a, b in itertools.combinations(parts, 2):
        assert not set(a.tolist()) & set(b.tolist())
    again = split_indices(n, fractions, seed=0, labels=labels)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))
    other = split_indices(n, fractions, seed=1, labels=labels)
    assert not np.array_equal(parts[0], other[0])
    same = load_digits(seed=0)
    assert np.array_equal(same.x_val, digits.x_val) and np.array_equal(same.y_test, digits.y_test)
    assert not np.array_equal(load_digits(seed=1).y_val, digits.y_val)


def test_split_indices_stratifies_and_rejects_bad_fractions():
    labels = np.repeat([0, 1], [900, 100])
    train, val = split_indices(1000, (0.8, 0.2), seed=3, labels=labels)
    assert len(val) == 200 and np.count_nonzero(labels[val] == 1) == 20
    with pytest.raises(ValueError, match="summing to 1"):
        split_indices(10, (0.5, 0.2), seed=0)
    with pytest.raises(ValueError, match="leave a split empty"):
        split_indices(3, (0.9, 0.05, 0.05), seed=0)


def _save(tmp_path: Path, name: str = "my.npz", **arrays) -> Path:
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def test_npz_round_trip_images(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (200, 6, 5, 3)).astype(np.uint8), np.arange(200) % 4
    x[:, 0, 0, 0] = np.arange(200)  # an id per row, to match output rows to input rows
    x_test, y_test = rng.random((30, 6, 5, 3)), np.arange(30) % 4
    data = load_npz(
        _save(tmp_path, x_train=x, y_train=y, x_test=x_test, y_test=y_test), val_fraction=0.25
    )
    assert data.name == "my" and data.input_shape == (6, 5, 3) and data.num_classes == 4
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (150, 50, 30)
    assert np.array_equal(data.y_test, y_test)
    # Standardization is increasing per channel, so ranking the id pixel recovers the ids.
    ids = np.argsort(np.argsort(np.concatenate([data.x_train, data.x_val])[:, 0, 0, 0]))
    train_ids, val_ids = ids[:150], ids[150:]
    assert np.array_equal(np.sort(ids), np.arange(200))  # train and val partition x_train
    assert np.array_equal(data.y_train, y[train_ids]) and np.array_equal(data.y_val, y[val_ids])
    raw = x[train_ids].astype(np.float64)
    mean, std = raw.mean((0, 1, 2)), raw.std((0, 1, 2))
    np.testing.assert_allclose(data.x_train, (raw - mean) / std, atol=1e-5)
    np.testing.assert_allclose(data.x_test, (x_test - mean) / std, atol=1e-5)


def test_npz_grayscale_and_flat_features_carve_test(tmp_path):
    rng = np.random.default_rng(1)
    y = np.arange(100) % 5
    gray = load_npz(_save(tmp_path, x_train=rng.random((100, 7, 7)), y_train=y))
    assert gray.input_shape == (7, 7, 1) and gray.num_classes == 5
    assert (len(gray.x_train), len(gray.x_val), len(gray.x_test)) == (60, 20, 20)
    flat = load_npz(_save(tmp_path, "flat.npz", x_train=rng.random((100, 12)), y_train=y))
    assert flat.input_shape == (12,) and flat.x_test.shape == (20, 12)
    assert np.abs(flat.x_train.mean(axis=0)).max() < 1e-5  # per-feature standardized
    splits = [_rows(flat.x_train), _rows(flat.x_val), _rows(flat.x_test)]
    for a, b in itertools.combinations(splits, 2):
        assert not a & b


GOOD_X, GOOD_Y = np.zeros((20, 4, 4)), np.arange(20) % 2


@pytest.mark.parametrize(
    ("arrays", "error", "match"),
    [
        ({"x_train": GOOD_X}, KeyError, r"bad\.npz.*y_train.*\['x_train'\]"),
        ({**{"x_train": GOOD_X, "y_train": GOOD_Y}, "x_test": GOOD_X}, KeyError, "y_test"),
        ({"x_train": np.zeros(20), "y_train": GOOD_Y}, ValueError, r"x_train in bad\.npz: .*1-D"),
        (
            {"x_train": np.array(["a"] * 20), "y_train": GOOD_Y},
            ValueError,
            "x_train in bad.npz: dtype <U1 is not numeric",
        ),
        (
            {"x_train": np.full((20, 4, 4), np.nan), "y_train": GOOD_Y},
            ValueError,
            "x_train in bad.npz: .*NaN or infinite",
        ),
        (
            {"x_train": GOOD_X, "y_train": GOOD_Y[:19]},
            ValueError,
            "y_train in bad.npz: 19 labels for 20 examples",
        ),
        (
            {"x_train": GOOD_X, "y_train": GOOD_Y + 0.5},
            ValueError,
            "y_train in bad.npz: holds non-integer",
        ),
        (
            {"x_train": GOOD_X, "y_train": GOOD_Y - 1},
            ValueError,
            r"y_train in bad\.npz: labels range over -1\.\.0",
        ),
        (
            {"x_train": GOOD_X, "y_train": GOOD_Y.reshape(20, 1)},
            ValueError,
            "y_train in bad.npz: .*2-D",
        ),
        (
            {
                "x_train": GOOD_X,
                "y_train": GOOD_Y,
                "x_test": np.zeros((5, 4, 3)),
                "y_test": GOOD_Y[:5],
            },
            ValueError,
            r"x_test in bad\.npz: .*\(4, 3, 1\).*\(4, 4, 1\)",
        ),
        (
            {
                "x_train": GOOD_X,
                "y_train": GOOD_Y,
                "x_test": GOOD_X[:5],
                "y_test": np.array([0, 1, 0, 1, -3]),
            },
            ValueError,
            "y_test in bad.npz: labels",
        ),
    ],
)
def test_npz_errors_name_the_array(tmp_path, arrays, error, match):
    with pytest.raises(error, match=match):
        load_npz(_save(tmp_path, "bad.npz", **arrays))


def test_npz_that_is_a_single_array(tmp_path):
    path = tmp_path / "one.npz"
    with open(path, "wb") as f:
        np.save(f, GOOD_X)
    with pytest.raises(ValueError, match="one.npz: holds a single array"):
        load_npz(path)


def test_synthetic_cifar_shape_and_determinism():
    kwargs = {"n_train": 64, "n_val": 16, "n_test": 16}
    data = synthetic_cifar(seed=5, **kwargs)
    assert data.input_shape == (32, 32, 3) and data.num_classes == 10
    assert data.x_train.shape == (64, 32, 32, 3) and data.x_train.dtype == np.float32
    assert data.y_test.shape == (16,) and data.y_train.max() < 10
    again = synthetic_cifar(seed=5, **kwargs)
    assert np.array_equal(data.x_train, again.x_train) and np.array_equal(data.y_val, again.y_val)
    assert not np.array_equal(data.x_train, synthetic_cifar(seed=6, **kwargs).x_train)
    small = synthetic_cifar(n_train=8, n_val=4, n_test=4, num_classes=3, image_shape=(9, 7, 2))
    assert small.input_shape == (9, 7, 2) and small.num_classes == 3


def test_synthetic_cifar_is_learnable():
    # A nearest-class-mean classifier on train must beat chance (10%) clearly on test.
    data = synthetic_cifar(n_train=1000, n_val=10, n_test=300, seed=0)
    x_train, x_test = data.x_train.reshape(1000, -1), data.x_test.reshape(300, -1)
    means = np.stack([x_train[data.y_train == k].mean(0) for k in range(10)])
    predicted = np.argmax(x_test @ means.T - 0.5 * (means**2).sum(1), axis=1)
    assert np.mean(predicted == data.y_test) > 0.5


def test_batches_seeded_epoch():
    x, y = np.arange(10).reshape(10, 1) * 1.0, np.arange(10)
    first = list(batches(x, y, 3, key_or_seed=7))
    assert len(first) == 3 and all(xb.shape == (3, 1) for xb, _ in first)
    assert all(np.array_equal(xb[:, 0], yb) for xb, yb in first)  # pairs stay aligned
    again = list(batches(x, y, 3, key_or_seed=np.random.default_rng(7)))
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(first, again, strict=True))
    seen = np.concatenate([yb for _, yb in first])
    assert len(set(seen.tolist())) == 9
    ordered = list(batches(x, y, 4, shuffle=False, drop_last=False))
    assert [len(yb) for _, yb in ordered] == [4, 4, 2]
    assert np.array_equal(np.concatenate([yb for _, yb in ordered]), y)
    with pytest.raises(ValueError, match="batch_size=11 with 10 examples"):
        batches(x, y, 11, key_or_seed=0)


def test_batches_accepts_jax_key():
    jax = pytest.importorskip("jax")
    x, y = np.zeros((8, 2)), np.arange(8)
    a = [yb for _, yb in batches(x, y, 4, key_or_seed=jax.random.key(1))]
    b = [yb for _, yb in batches(x, y, 4, key_or_seed=jax.random.key(1))]
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))


def test_batch_stream_deterministic_full_batches_and_reshuffles():
    x, y = np.arange(10).reshape(10, 1) * 1.0, np.arange(10)
    stream = BatchStream(x, y, 4, seed=3)
    got = [stream.next() for _ in range(6)]
    assert all(len(yb) == 4 and np.array_equal(xb[:, 0], yb) for xb, yb in got)
    assert stream.state() == {"seed": 3, "epoch": 2, "index": 8}
    other = BatchStream(x, y, 4, seed=3)
    assert all(np.array_equal(yb, next(other)[1]) for _, yb in got)
    epoch0, epoch1 = (
        np.concatenate([g[1] for g in got[:2]]),
        np.concatenate([g[1] for g in got[2:4]]),
    )
    assert len(set(epoch0.tolist())) == 8 and not np.array_equal(epoch0, epoch1)
    with pytest.raises(ValueError, match="batch_size=11 but x has 10 examples"):
        BatchStream(x, y, 11)


def test_batch_stream_resumes_from_state():
    x, y = np.random.default_rng(0).random((50, 3)), np.arange(50)
    stream = BatchStream(x, y, 8, seed=11)
    for _ in range(9):
        stream.next()
    state = stream.state()
    assert all(type(v) is int for v in state.values())
    expected = [stream.next()[1] for _ in range(10)]
    resumed = BatchStream(x, y, 8, seed=11, state=state)
    assert all(np.array_equal(e, resumed.next()[1]) for e in expected)
    with pytest.raises(ValueError, match="pass seed=11"):
        BatchStream(x, y, 8, seed=12, state=state)
    with pytest.raises(ValueError, match="expected exactly the keys"):
        BatchStream(x, y, 8, seed=11, state={"epoch": 0})


def test_batch_stream_takes_batches_stacked_as_next_gives_them():
    x, y = np.arange(30).reshape(30, 1) * 1.0, np.arange(30)
    one, stacked = BatchStream(x, y, 4, seed=5), BatchStream(x, y, 4, seed=5)
    expected = [one.next() for _ in range(10)]
    xs, ys = stacked.take(3)
    assert xs.shape == (3, 4, 1) and ys.shape == (3, 4)
    chunks = list(stacked.chunks(7, 3))
    assert [len(c[1]) for c in chunks] == [3, 3, 1]
    got_y = np.concatenate([ys, *(c[1] for c in chunks)])
    np.testing.assert_array_equal(got_y, np.stack([e[1] for e in expected]))
    assert stacked.state() == one.state()
    with pytest.raises(ValueError, match="take: n=0; expected at least 1 batch"):
        stacked.take(0)


def test_load_dataset_registry(tmp_path):
    assert set(DATASETS) == {"digits", "fashion_mnist", "synthetic_cifar"}
    data = load_dataset("synthetic_cifar", n_train=8, n_val=4, n_test=4)
    assert data.name == "synthetic_cifar"
    path = _save(
        tmp_path, x_train=np.random.default_rng(0).random((30, 4)), y_train=np.arange(30) % 3
    )
    assert load_dataset(str(path)).input_shape == (4,)
    with pytest.raises(
        ValueError, match="unknown dataset 'cifar'.*digits, fashion_mnist, synthetic_cifar"
    ):
        load_dataset("cifar")


def _write_idx(path: Path, array: np.ndarray, compress: bool = True) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def _fake_fashion(folder: Path, compress: bool = True, n_train: int = 60, n_test: int = 20):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for kind, n in (("train", n_train), ("t10k", n_test)):
        _write_idx(
            folder / f"{kind}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), compress
        )
        _write_idx(folder / f"{kind}-labels-idx1-ubyte", np.arange(n) % 10, compress)


@pytest.mark.parametrize(("subfolder", "compress"), [(".", True), ("data/fashion", False)])
def test_fashion_mnist_from_fake_idx_files(tmp_path, subfolder, compress):
    _fake_fashion(tmp_path / subfolder, compress)
    data = load_fashion_mnist(tmp_path, val_size=10, seed=0)
    assert data.input_shape == (28, 28, 1) and data.num_classes == 10
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (50, 10, 20)
    assert np.array_equal(data.y_test, np.arange(20) % 10)
    assert set(data.y_val.tolist()) == set(range(10))  # stratified
    assert not _rows(data.x_train) & _rows(data.x_val)
    assert abs(float(data.x_train.mean())) < 1e-5
    assert np.array_equal(load_fashion_mnist(tmp_path, val_size=10, seed=0).x_val, data.x_val)


def test_fashion_mnist_missing_root_and_file(tmp_path):
    with pytest.raises(
        FileNotFoundError, match="does not exist.*apt-get install dataset-fashion-mnist"
    ):
        load_fashion_mnist(tmp_path / "nowhere")
    _fake_fashion(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte.gz.*apt-get install"):
        load_fashion_mnist(tmp_path)


def test_fashion_mnist_rejects_bad_idx(tmp_path):
    _fake_fashion(tmp_path)
    bad = tmp_path / "train-labels-idx1-ubyte.gz"
    with gzip.open(bad, "wb") as f:
        f.write(struct.pack(">BBBBI", 0, 0, 0x08, 1, 60) + bytes(59))
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte.gz: 67 bytes.*truncated"):
        load_fashion_mnist(tmp_path)
    with gzip.open(bad, "wb") as f:
        f.write(b"PK\x03\x04junk")
    with pytest.raises(ValueError, match="not an idx magic number"):
        load_fashion_mnist(tmp_path)


@pytest.mark.skipif(
    not Path(FASHION_MNIST_ROOT).is_dir(),
    reason="Debian package dataset-fashion-mnist is not installed",
)
def test_real_fashion_mnist():
    data = load_fashion_mnist(val_size=5000)
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (55000, 5000, 10000)
    assert data.input_shape == (28, 28, 1) and data.num_classes == 10
    assert np.array_equal(np.bincount(data.y_val), [500] * 10)
    assert np.array_equal(np.bincount(data.y_test), [1000] * 10)
