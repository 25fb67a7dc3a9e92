"""In-memory image datasets and a fast batch loader over them."""

from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from nas_prune.data._preprocess import DEFAULT_PREPROCESS, Preprocess

__all__ = ["ImageArrays", "to_uint8_images"]


def to_uint8_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize ``[N, C, H, W]`` images (any dtype, values in 0..1 if float) to ``size`` as uint8."""
    x = images.float()
    if images.dtype == torch.uint8:
        x = x / 255.0
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


class ImageArrays(Dataset):
    """Images kept as uint8 ``[N, C, S, S]`` with int64 labels; items come out normalised, 3-channel.

    Args:
        images: uint8 images of the final size.
        labels: class indices.
        num_classes: number of classes of the whole dataset.
        preprocess: the normalisation applied as items and batches come out (nas-prune's default:
            mean 0.5, std 0.25); kept 4x smaller than float32 until then.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, num_classes: int,
                 preprocess: Preprocess = DEFAULT_PREPROCESS) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError("images must be uint8 [N, C, H, W]")
        self.images = images
        self.labels = labels.long()
        self.num_classes = num_classes
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.labels)

    def transform(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 images to normalised 3-channel float ones (:meth:`Preprocess.normalize`)."""
        return self.preprocess.normalize(batch)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(self.images[idx : idx + 1])[0], self.labels[idx]

    def subset(self, indices: torch.Tensor) -> "ImageArrays":
        return ImageArrays(self.images[indices], self.labels[indices], self.num_classes, self.preprocess)

    def batches(self, batch_size: int, *, shuffle: bool, generator: torch.Generator | None = None,
                drop_last: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(x, y)`` batches by tensor indexing (no per-item Python calls)."""
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        stop = n - n % batch_size if drop_last and n >= batch_size else n
        for start in range(0, stop, batch_size):
            idx = order[start : start + batch_size]
            yield self.transform(self.images[idx]), self.labels[idx]
