"""Datasets by name and a batch iterator used by every stage."""

from __future__ import annotations

from nas_prune.data._arrays import ImageArrays, to_uint8_images
from nas_prune.data._loader import batches, num_batches
from nas_prune.data._sources import FASHION_MNIST_ROOT, DataBundle, list_datasets, load_data, register_dataset

__all__ = [
    "DataBundle",
    "FASHION_MNIST_ROOT",
    "ImageArrays",
    "batches",
    "list_datasets",
    "load_data",
    "num_batches",
    "register_dataset",
    "to_uint8_images",
]
