"""Datasets and minibatches for the search: loaders, seeded disjoint splits and batch streams."""

from nas.data.augment import AUGMENTATIONS, augment
from nas.data.batching import (
    BatchStream,
    batches,
)
from nas.data.dataset import (
    Dataset,
    split_indices,
)
from nas.data.loaders import (
    DATASETS,
    FASHION_MNIST_INSTALL,
    FASHION_MNIST_ROOT,
    load_dataset,
    load_digits,
    load_fashion_mnist,
    load_npz,
    synthetic_cifar,
)

__all__ = [
    "AUGMENTATIONS",
    "DATASETS",
    "FASHION_MNIST_INSTALL",
    "FASHION_MNIST_ROOT",
    "BatchStream",
    "Dataset",
    "augment",
    "batches",
    "load_dataset",
    "load_digits",
    "load_fashion_mnist",
    "load_npz",
    "split_indices",
    "synthetic_cifar",
]
