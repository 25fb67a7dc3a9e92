"""A subset of a dataset that keeps its kind: nas-prune's arrays and folders stay cached and uint8."""

from __future__ import annotations

from typing import Any

import torch

from nas_prune.data._arrays import ImageArrays
from nas_prune.data._files import ImageFiles

__all__ = ["take"]


def take(ds: Any, indices: torch.Tensor) -> Any:
    """The items ``indices`` of ``ds``: an :class:`ImageArrays` or :class:`ImageFiles` of the same kind, else a Subset."""
    if isinstance(ds, ImageArrays):
        return ds.subset(indices)
    if isinstance(ds, ImageFiles):
        return ds.view(indices=indices)
    return torch.utils.data.Subset(ds, indices.tolist())
