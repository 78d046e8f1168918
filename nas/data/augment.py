"""Training-time augmentation of image batches: random shifts (a padded random crop) and
horizontal flips, drawn per example from a seeded NumPy generator."""

from __future__ import annotations

import numpy as np

AUGMENTATIONS = ("none", "crop", "crop_flip")


def augment(x: np.ndarray, rng: np.random.Generator, kind: str, pad: int = 2) -> np.ndarray:
    """A randomly augmented copy of the NHWC batch `x` (`x` itself when `kind` is "none").

    Args:
      x: images, (N, H, W, C).
      rng: draws each image's shift and flip.
      kind: one of `AUGMENTATIONS`: "crop" shifts each image by up to `pad` pixels in each
        direction (zero padding, then an H x W crop); "crop_flip" also mirrors half of them.
      pad: the largest shift, in pixels.
    """
    if kind not in AUGMENTATIONS:
        raise ValueError(f"augmentation {kind!r}; valid: {', '.join(AUGMENTATIONS)}")
    if kind == "none":
        return x
    n, h, w, _ = x.shape
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (h, w), axis=(1, 2))
    dy, dx = rng.integers(0, 2 * pad + 1, size=(2, n))
    out = windows[np.arange(n), dy, dx].transpose(0, 2, 3, 1)  # (N, C, H, W) -> NHWC
    if kind == "crop_flip":
        flip = rng.random(n) < 0.5
        out = np.where(flip[:, None, None, None], out[:, :, ::-1], out)
    return np.ascontiguousarray(out)
