import numpy as np
import pytest

from nas.data import augment


def _batch(n=16, h=6, w=5, c=2):
    return np.random.default_rng(0).normal(size=(n, h, w, c)).astype(np.float32)


def test_crop_shifts_each_image_by_at_most_pad_pixels_with_zeros_filled_in():
    x, pad = _batch(), 2
    out = augment(x, np.random.default_rng(1), "crop", pad)
    assert out.shape == x.shape and out.dtype == x.dtype
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    shifts = set()
    for i in range(len(x)):
        found = [
            (dy, dx)
            for dy in range(2 * pad + 1)
            for dx in range(2 * pad + 1)
            if np.array_equal(out[i], padded[i, dy : dy + x.shape[1], dx : dx + x.shape[2]])
        ]
        assert found, f"image {i} is not a shifted copy of its input"
        shifts.add(found[0])
    assert len(shifts) > 1  # shifts are drawn per image


def test_crop_flip_mirrors_some_images_and_none_returns_the_batch():
    x = _batch(n=64)
    out = augment(x, np.random.default_rng(2), "crop_flip", pad=0)
    mirrored = [np.array_equal(o, i[:, ::-1]) for o, i in zip(out, x, strict=True)]
    kept = [np.array_equal(o, i) for o, i in zip(out, x, strict=True)]
    assert all(m or k for m, k in zip(mirrored, kept, strict=True))
    assert 10 < sum(mirrored) < 54
    assert augment(x, np.random.default_rng(2), "none") is x


def test_same_seed_same_augmentation_and_unknown_kind_is_named():
    x = _batch()
    first = augment(x, np.random.default_rng(3), "crop_flip")
    assert np.array_equal(first, augment(x, np.random.default_rng(3), "crop_flip"))
    with pytest.raises(ValueError, match="'rotate'; valid: none, crop, crop_flip"):
        augment(x, np.random.default_rng(3), "rotate")
