"""One way to iterate over any dataset in batches."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from nas_prune.data._arrays import ImageArrays
from nas_prune.data._files import ImageFiles, _SeededBatches

if TYPE_CHECKING:
    from nas_prune.distributed import World

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
    world: World | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(x, y)`` batches.

    In-memory datasets are indexed directly (fast); image folders stream through a multi-worker
    DataLoader (:class:`~nas_prune.data.ImageFiles`); other datasets through a plain DataLoader.
    A training split with augmentation yields augmented shuffled batches. ``normalize=False``
    yields nas-prune's own datasets' images as uint8 (normalise them later with the split's
    ``preprocess``: 4x less memory, e.g. for a scoring cache); other datasets' items as they are.

    With a ``world`` of several processes (:mod:`nas_prune.distributed`; training batches:
    ``drop_last=True`` and a ``seed`` when shuffled), every process draws the same global batches of
    ``batch_size`` and yields its own share of each (:func:`~nas_prune.distributed.shard`): image
    folders decode only that share, in-memory splits index (and augment) the global batch and slice it.
    """
    if world is not None and world.active:
        yield from _sharded(dataset, batch_size, world, shuffle=shuffle, seed=seed, drop_last=drop_last,
                            max_batches=max_batches, normalize=normalize)
        return
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


def _sharded(dataset: Dataset, batch_size: int, world: World, *, shuffle: bool, seed: int | None, drop_last: bool,
             max_batches: int | None, normalize: bool) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    from nas_prune.distributed import shard
    from nas_prune.errors import NasPruneError

    if not drop_last or (shuffle and seed is None):
        raise NasPruneError("sharded batches are for training: give drop_last=True and, when shuffled, a seed "
                            "(every process must draw the same global batches)")
    rows = shard(batch_size, world)
    if isinstance(dataset, ImageFiles):
        sampler = _SeededBatches(len(dataset), batch_size, drop_last)
        sampler.set_epoch(shuffle, seed, None)
        mine = [b[rows] for b in sampler.orders()][:max_batches]
        yield from dataset.batches(rows.stop - rows.start, seed=seed, index_batches=mine, normalize=normalize)
        return
    for x, y in batches(dataset, batch_size, shuffle=shuffle, seed=seed, drop_last=True, max_batches=max_batches,
                        normalize=normalize):
        yield x[rows], y[rows]


def num_batches(dataset: Dataset, batch_size: int, *, drop_last: bool = False) -> int:
    n = len(dataset)  # type: ignore[arg-type]
    return n // batch_size if drop_last and n >= batch_size else -(-n // batch_size)


def unaugmented(dataset: Dataset) -> Dataset:
    """``dataset`` without training augmentation (for BatchNorm recalibration, caches, evaluation)."""
    if isinstance(dataset, (ImageArrays, ImageFiles)) and dataset.augment != "none":
        return dataset.view(augment="none")
    return dataset
