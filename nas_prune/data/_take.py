"""A subset of a dataset that keeps its kind: nas-prune's arrays and folders stay cached and uint8."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from nas_prune.data._arrays import ImageArrays
from nas_prune.data._files import ImageFiles

__all__ = ["take", "with_train_subset"]


def take(ds: Any, indices: torch.Tensor) -> Any:
    """The items ``indices`` of ``ds``: an :class:`ImageArrays` or :class:`ImageFiles` of the same kind, else a Subset."""
    if isinstance(ds, ImageArrays):
        return ds.subset(indices)
    if isinstance(ds, ImageFiles):
        return ds.view(indices=indices)
    return torch.utils.data.Subset(ds, indices.tolist())


def with_train_subset(bundle: Any, images: int, seed: int = 0) -> Any:
    """``bundle`` (a :class:`DataBundle`) with its training split cut to ``images``, a subset fixed by ``seed``.

    The same ``seed`` gives the same images (in their original order); a split of at most ``images``
    is returned whole.
    """
    n = len(bundle.train)
    if n <= images:
        return bundle
    keep = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:images].sort().values
    return dataclasses.replace(bundle, train=take(bundle.train, keep))
