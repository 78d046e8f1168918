"""XLA compiler options for a network's train and eval steps, chosen by the size of its images.

XLA-CPU hands convolutions to the YNNPACK library (its "YNN fusions"). On the 2-core CPU,
XLA's own convolutions ran faster on the larger images of a CIFAR-shaped network and slower on
the small ones of digits (``python experiments/bench_conv.py --library``; forward and both
gradients alike):

====================  ===============  ==================
images x channels     with YNNPACK     XLA's own
====================  ===============  ==================
16x16x32              2.4-2.6 ms       1.8-1.9 ms
8x8x64                2.6 ms           1.8 ms
4x4x32                0.21 ms          0.31 ms
====================  ===============  ==================

So a network whose images are at least `MIN_SIDE` pixels a side compiles without YNN fusions
(its supernet train step measured 6% faster on 32x32x3), and a smaller one keeps XLA's default
(turning them off made the digits step 5% slower). The flag set by hand in ``XLA_FLAGS`` wins.
"""

from __future__ import annotations

import os

import jax

YNN_FLAG = "xla_cpu_experimental_ynn_fusion_type"
MIN_SIDE = 16  # pixels a side of the input images from which YNN fusions are left out


def compiler_options(input_shape) -> tuple[tuple[str, str], ...]:
    """The options for the steps of a network on examples of `input_shape` (H, W, C), as
    (name, value) pairs; none off the CPU, for inputs that are not images, for images under
    `MIN_SIDE` pixels a side, or where ``XLA_FLAGS`` sets the flag."""
    if jax.default_backend() != "cpu" or YNN_FLAG in os.environ.get("XLA_FLAGS", ""):
        return ()
    if input_shape is None or len(input_shape) != 3 or min(input_shape[:2]) < MIN_SIDE:
        return ()
    return ((YNN_FLAG, ""),)
