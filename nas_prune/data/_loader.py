"""One way to iterate over any dataset in batches."""

from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from nas_prune.data._arrays import ImageArrays
from nas_prune.data._files import ImageFiles

__all__ = ["batches", "num_batches", "unaugmented"]


def batches(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int | None = None,
    drop_last: bool = False,
    max_batches: int | None = None,
    normalize: bool = True,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(x, y)`` batches.

    In-memory datasets are indexed directly (fast); image folders stream through a multi-worker
    DataLoader (:class:`~nas_prune.data.ImageFiles`); other datasets through a plain DataLoader.
    A training split with augmentation yields augmented shuffled batches. ``normalize=False``
    yields nas-prune's own datasets' images as uint8 (normalise them later with the split's
    ``preprocess``: 4x less memory, e.g. for a scoring cache); other datasets' items as they are.
    """
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    if isinstance(dataset, ImageArrays):
        it = dataset.batches(batch_size, shuffle=shuffle, generator=g, drop_last=drop_last, normalize=normalize)
    elif isinstance(dataset, ImageFiles):
        it = dataset.batches(batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last, normalize=normalize)
    else:
        it = iter(DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=g, drop_last=drop_last))
    for i, (x, y) in enumerate(it):
        if max_batches is not None and i >= max_batches:
            break
        yield x, torch.as_tensor(y)


def num_batches(dataset: Dataset, batch_size: int, *, drop_last: bool = False) -> int:
    n = len(dataset)  # type: ignore[arg-type]
    return n // batch_size if drop_last and n >= batch_size else -(-n // batch_size)


def unaugmented(dataset: Dataset) -> Dataset:
    """``dataset`` without training augmentation (for BatchNorm recalibration, caches, evaluation)."""
    if isinstance(dataset, (ImageArrays, ImageFiles)) and dataset.augment != "none":
        return dataset.view(augment="none")
    return dataset
