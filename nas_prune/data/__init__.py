"""Datasets by name, your own data as a :class:`DataBundle`, and a batch iterator used by every stage."""

from __future__ import annotations

from nas_prune.data._arrays import ImageArrays, augment_batch, to_uint8_images
from nas_prune.data._files import (
    AUGMENTATIONS,
    MAX_BAD_FRACTION,
    BadFiles,
    ImageFiles,
    decode_image_file,
    default_workers,
)
from nas_prune.data._loader import batches, num_batches, unaugmented
from nas_prune.data._preprocess import DEFAULT_PREPROCESS, Preprocess, parse_channel_values
from nas_prune.data._sources import (
    FASHION_MNIST_ROOT,
    DataBundle,
    default_augment,
    fashion_mnist_arrays,
    list_datasets,
    load_data,
    register_dataset,
)
from nas_prune.data._take import take, with_train_subset
from nas_prune.data._user import check_num_classes, make_bundle, select_classes, to_bundle

__all__ = [
    "AUGMENTATIONS",
    "BadFiles",
    "DEFAULT_PREPROCESS",
    "DataBundle",
    "FASHION_MNIST_ROOT",
    "ImageArrays",
    "ImageFiles",
    "MAX_BAD_FRACTION",
    "augment_batch",
    "batches",
    "check_num_classes",
    "decode_image_file",
    "fashion_mnist_arrays",
    "default_augment",
    "default_workers",
    "list_datasets",
    "load_data",
    "make_bundle",
    "num_batches",
    "parse_channel_values",
    "Preprocess",
    "register_dataset",
    "select_classes",
    "take",
    "with_train_subset",
    "to_bundle",
    "to_uint8_images",
    "unaugmented",
]
