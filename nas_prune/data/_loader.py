"""One way to iterate over any dataset in batches."""

from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from nas_prune.data._arrays import ImageArrays

__all__ = ["batches", "num_batches"]


def batches(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int | None = None,
    drop_last: bool = False,
    max_batches: int | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(x, y)`` batches; in-memory datasets are indexed directly (fast), others use a DataLoader."""
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    if isinstance(dataset, ImageArrays):
        it = dataset.batches(batch_size, shuffle=shuffle, generator=g, drop_last=drop_last)
    else:
        it = iter(DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=g, drop_last=drop_last))
    for i, (x, y) in enumerate(it):
        if max_batches is not None and i >= max_batches:
            break
        yield x, torch.as_tensor(y)


def num_batches(dataset: Dataset, batch_size: int, *, drop_last: bool = False) -> int:
    n = len(dataset)  # type: ignore[arg-type]
    return n // batch_size if drop_last and n >= batch_size else -(-n // batch_size)
