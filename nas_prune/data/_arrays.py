"""In-memory image datasets and a fast batch loader over them."""

from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from nas_prune.data._preprocess import DEFAULT_PREPROCESS, Preprocess

__all__ = ["ImageArrays", "augment_batch", "to_uint8_images"]


def to_uint8_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize ``[N, C, H, W]`` images (any dtype, values in 0..1 if float) to ``size`` as uint8."""
    x = images.float()
    if images.dtype == torch.uint8:
        x = x / 255.0
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def augment_batch(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """The small-image training recipe on a uint8 ``[N, C, S, S]`` batch: each image padded by 1/8 of
    its side (zeros), a random ``S`` square cut out, and flipped left-right with probability 1/2
    (the CIFAR recipe of He et al. 2016). Drawn from ``generator`` (on the CPU), so a seeded epoch
    sees the same crops on any device."""
    n, _, s, _ = images.shape
    pad = max(1, s // 8)
    padded = F.pad(images, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).tolist()
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).tolist()
    flip = torch.rand(n, generator=generator) < 0.5
    out = torch.stack([padded[i, :, dy[i]:dy[i] + s, dx[i]:dx[i] + s] for i in range(n)])
    return torch.where(flip.to(out.device).view(-1, 1, 1, 1), out.flip(-1), out)


class ImageArrays(Dataset):
    """Images kept as uint8 ``[N, C, S, S]`` with int64 labels; items come out normalised, 3-channel.

    Args:
        images: uint8 images of the final size.
        labels: class indices.
        num_classes: number of classes of the whole dataset.
        preprocess: the normalisation applied as items and batches come out (nas-prune's default:
            mean 0.5, std 0.25); kept 4x smaller than float32 until then.
        augment: ``"standard"``: shuffled batches (the training stages') are augmented with
            :func:`augment_batch`; ``"none"``: never.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, num_classes: int,
                 preprocess: Preprocess = DEFAULT_PREPROCESS, augment: str = "none") -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError("images must be uint8 [N, C, H, W]")
        self.images = images
        self.labels = labels.long()
        self.num_classes = num_classes
        self.preprocess = preprocess
        self.augment = augment

    def __len__(self) -> int:
        return len(self.labels)

    def transform(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 images to normalised 3-channel float ones (:meth:`Preprocess.normalize`)."""
        return self.preprocess.normalize(batch)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(self.images[idx : idx + 1])[0], self.labels[idx]

    def subset(self, indices: torch.Tensor) -> "ImageArrays":
        return ImageArrays(self.images[indices], self.labels[indices], self.num_classes, self.preprocess, self.augment)

    def view(self, *, augment: str) -> "ImageArrays":
        """The same images (shared, not copied) with another augmentation."""
        return ImageArrays(self.images, self.labels, self.num_classes, self.preprocess, augment)

    def take(self, idx: torch.Tensor, generator: torch.Generator | None = None, *,
             normalize: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Images and labels at ``idx`` (augmented if the split is; normalised unless ``normalize=False``)."""
        idx = idx.to(self.images.device)
        x = self.images[idx]
        if self.augment == "standard":
            x = augment_batch(x, generator)
        return (self.transform(x) if normalize else x), self.labels[idx]

    def batches(self, batch_size: int, *, shuffle: bool, generator: torch.Generator | None = None,
                drop_last: bool = False, normalize: bool = True) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(x, y)`` batches by tensor indexing (no per-item Python calls).

        Shuffled batches of an augmented split are augmented; ``normalize=False`` yields uint8 images.
        """
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        stop = n - n % batch_size if drop_last and n >= batch_size else n
        for start in range(0, stop, batch_size):
            idx = order[start : start + batch_size]
            if shuffle:
                yield self.take(idx, generator, normalize=normalize)
            else:
                x = self.images[idx.to(self.images.device)]
                yield (self.transform(x) if normalize else x), self.labels[idx.to(self.labels.device)]
