"""Image files on disk, streamed: decoded by torchvision's libjpeg-turbo decoder in worker processes.

:class:`ImageFiles` is one split of an image folder (``root/<class>/<image>``). Nothing is held in
memory but the file list: batches come from a :class:`~torch.utils.data.DataLoader` with worker
processes (:func:`default_workers`), pinned memory when CUDA is present, persistent workers and
prefetching (:func:`nas_prune.data.batches`). Items leave the workers as uint8 ``[3, S, S]``
tensors (4x less to pass between processes than float32); each batch is normalised once, in the
training process, with the split's :class:`~nas_prune.data.Preprocess`.

Transforms (:mod:`torchvision.transforms.v2` on uint8 tensors, measured 1.8x faster than PIL with
``ToTensor`` on 256-pixel JPEGs: ``benchmarks/data_throughput.py``):

- evaluation: the shorter side resized to ``preprocess.resize`` (default ``input_size / 0.875``,
  256 for 224, the standard ImageNet evaluation) and the centre ``input_size`` square cut out;
- training with ``augment="standard"``: at 128 pixels and more, a random resized crop (scale
  0.08-1, Inception's) and a horizontal flip; below, the evaluation resize then a random crop of
  the image padded by 1/8 of its side and a flip (the CIFAR recipe).

A file that cannot be decoded is skipped and counted (:class:`BadFiles`): its path is logged once;
when more than ``max_bad_fraction`` of a split is bad (``0`` with ``--strict-data``) reading stops
with a one-line :class:`~nas_prune.errors.DataError` naming the first files.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import torch
from torch.utils.data import Dataset, Sampler

from nas_prune.data._preprocess import DEFAULT_PREPROCESS, Preprocess
from nas_prune.errors import DataError

__all__ = ["AUGMENTATIONS", "BadFiles", "ImageFiles", "MAX_BAD_FRACTION", "decode_image_file", "default_workers",
           "eval_resize"]

#: ``--augment`` values.
AUGMENTATIONS = ("none", "standard")
#: Default share of a split's files that may be unreadable before the run stops (0.1 %).
MAX_BAD_FRACTION = 0.001
#: Standard evaluation ratio of crop to resized image (224 of 256).
CROP_RATIO = 0.875
#: From this input size on, training crops are random resized crops (below: padded random crops).
RESIZED_CROP_FROM = 128


def default_workers() -> int:
    """Data loader worker processes by default: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def eval_resize(input_size: int, preprocess: Preprocess) -> int:
    """Shorter side before the centre crop: ``preprocess.resize`` or ``input_size / 0.875``."""
    return int(preprocess.resize) if preprocess.resize else int(math.ceil(input_size / CROP_RATIO))


@dataclass
class BadFiles:
    """Unreadable files met while reading one split, and when they stop the run."""

    total: int
    max_fraction: float = MAX_BAD_FRACTION
    paths: dict[str, str] = field(default_factory=dict)

    def add(self, path: str, reason: str, where: str) -> None:
        if path in self.paths:
            return
        self.paths[path] = reason
        if len(self.paths) <= self.max_fraction * self.total:
            from nas_prune.progress import console

            console.print(f"warning: skipped an image that cannot be read: {path} ({reason}); "
                          f"{len(self.paths)} so far in {where}", style="yellow", markup=False, soft_wrap=True)
        else:
            first = ", ".join(list(self.paths)[:3])
            allowed = "none allowed: --strict-data" if self.max_fraction == 0 else \
                f"over the {self.max_fraction:.1%} allowed"
            raise DataError(f"{len(self.paths)} of {self.total} images in {where} cannot be read ({allowed}), "
                            f"first: {first}: delete or replace them")

    def to_json(self) -> dict[str, Any]:
        return {"count": len(self.paths), "of": self.total, "first": list(self.paths)[:10]}


def _transforms(input_size: int, preprocess: Preprocess, train: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    from torchvision.transforms import v2

    resize = eval_resize(input_size, preprocess)
    if not train:
        return v2.Compose([v2.Resize(resize, antialias=True), v2.CenterCrop(input_size)])
    if input_size >= RESIZED_CROP_FROM:
        return v2.Compose([v2.RandomResizedCrop(input_size, antialias=True), v2.RandomHorizontalFlip()])
    return v2.Compose([v2.Resize(resize, antialias=True), v2.CenterCrop(input_size),
                       v2.RandomCrop(input_size, padding=max(1, input_size // 8)), v2.RandomHorizontalFlip()])


def decode_image_file(path: str) -> torch.Tensor:
    """``path`` as a uint8 RGB ``[3, H, W]`` tensor: torchvision's decoders (libjpeg-turbo, libpng,
    libwebp), PIL for the formats they do not read."""
    tv_decode = _torchvision_decoder()
    if tv_decode is not None:
        try:
            return tv_decode(path)
        except RuntimeError:
            pass  # a format torchvision does not read, or a broken file: PIL decides
    import numpy as np
    from PIL import Image

    with Image.open(path) as img:
        return torch.from_numpy(np.asarray(img.convert("RGB")).copy()).permute(2, 0, 1)


@functools.lru_cache(maxsize=1)
def _torchvision_decoder() -> Callable[[str], torch.Tensor] | None:
    """torchvision's image decoding (deprecated in 0.29 for TorchCodec, still the fastest here), or None."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from torchvision.io import ImageReadMode, decode_image, read_file
    except ImportError:
        return None

    def decode(path: str) -> torch.Tensor:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return decode_image(read_file(path), mode=ImageReadMode.RGB)

    return decode



class ImageFiles(Dataset):
    """One split of an image folder, read file by file.

    ``files[i]`` is ``(normalised float [3, S, S], label)`` like every nas-prune dataset;
    :func:`~nas_prune.data.batches` reads it in worker processes through :meth:`load`.

    Args:
        samples: ``(path, class index)`` pairs.
        classes: Class names (index order).
        input_size: Side of the square images produced.
        preprocess: Normalisation (and the evaluation resize).
        augment: ``"standard"`` makes items training crops and flips; ``"none"`` evaluation crops.
        workers: Loader worker processes (default :func:`default_workers`; 0 reads in this process).
        max_bad_fraction: Share of unreadable files tolerated (0: any is an error).
        where: Named in errors (the folder).
    """

    #: Files decoded by this process (tests count them; worker processes count their own).
    decodes = 0

    def __init__(self, samples: Sequence[tuple[str, int]], classes: Sequence[str], input_size: int, *,
                 preprocess: Preprocess = DEFAULT_PREPROCESS, augment: str = "none", workers: int | None = None,
                 max_bad_fraction: float = MAX_BAD_FRACTION, where: str = "") -> None:
        if augment not in AUGMENTATIONS:
            raise DataError(f"augment {augment!r}: use one of {', '.join(AUGMENTATIONS)}")
        self.samples = list(samples)
        self.classes = list(classes)
        self.num_classes = len(self.classes)
        self.labels = torch.tensor([c for _, c in self.samples], dtype=torch.long)
        self.input_size = int(input_size)
        self.augment = augment
        self.workers = default_workers() if workers is None else int(workers)
        self.where = where
        self.bad = BadFiles(len(self.samples), max_bad_fraction)
        self._loaders: dict[tuple[Any, ...], Any] = {}
        self.preprocess = preprocess

    # ------------------------------------------------------------------ settings
    @property
    def preprocess(self) -> Preprocess:
        return self._preprocess

    @preprocess.setter
    def preprocess(self, value: Preprocess) -> None:
        self._preprocess = value
        self._reader = _Reader(self.samples, _transforms(self.input_size, value, self.augment == "standard"),
                               self.augment)
        self._loaders = {}  # their workers hold the old transform

    def view(self, *, augment: str | None = None, indices: Sequence[int] | torch.Tensor | None = None) -> "ImageFiles":
        """The same files (or ``indices`` of them) with another augmentation; unreadable files stay counted apart."""
        samples = self.samples if indices is None else [self.samples[int(i)] for i in indices]
        return ImageFiles(samples, self.classes, self.input_size, preprocess=self.preprocess,
                          augment=self.augment if augment is None else augment, workers=self.workers,
                          max_bad_fraction=self.bad.max_fraction, where=self.where)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_loaders"] = {}  # loaders (and their worker processes) stay in the process that made them
        return state

    # ------------------------------------------------------------------ items
    def __len__(self) -> int:
        return len(self.samples)

    def load(self, idx: int) -> tuple[torch.Tensor | None, int, str]:
        """``(uint8 [3, S, S] or None when unreadable, label, path or the error)`` of file ``idx``."""
        return self._reader.load(idx)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y, path = self.load(idx)
        if x is None:
            file, _, reason = path.partition("\0")
            raise DataError(f"image {file} cannot be read ({reason}): delete or replace it")
        return self.preprocess.normalize(x.unsqueeze(0))[0], torch.tensor(y)

    # ------------------------------------------------------------------ batches
    def batches(self, batch_size: int, *, shuffle: bool = False, seed: int | None = None, drop_last: bool = False,
                index_batches: Sequence[Sequence[int]] | None = None, normalize: bool = True,
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``(x, y)`` batches through a persistent multi-worker DataLoader (see the module docstring).

        ``index_batches`` gives the batches' indices instead of ``shuffle``; unreadable files are
        left out of their batch and counted. ``normalize=False`` yields the uint8 images.
        Augmentation is drawn from ``seed`` and each item's index, the same for any number of workers.
        """
        from torch.utils.data import DataLoader

        key = (batch_size, drop_last, index_batches is None, self.workers)
        loader = self._loaders.get(key)
        if loader is None:
            loader = DataLoader(self._reader, batch_sampler=_SeededBatches(len(self), batch_size, drop_last), num_workers=self.workers, collate_fn=_collate,
                                pin_memory=torch.cuda.is_available(), persistent_workers=self.workers > 0,
                                prefetch_factor=4 if self.workers > 0 else None)
            self._loaders[key] = loader
        sampler: _SeededBatches = loader.batch_sampler  # type: ignore[assignment]
        sampler.set_epoch(shuffle, seed, index_batches)
        for x, y, bad in loader:
            for item in bad:
                file, _, reason = item.partition("\0")
                self.bad.add(file, reason, self.where or "the image folder")
            if len(y) == 0:
                continue
            yield (self.preprocess.normalize(x) if normalize else x), y


class _Reader(Dataset):
    """What the workers hold and run: the file list and the transform, ``(index, seed)`` ->
    ``(uint8 image or None, label, path)``. It refers to no :class:`ImageFiles`, so a split and its
    cached loaders form no reference cycle (one would keep worker processes alive until a garbage
    collection, whose shutdown then waits seconds per worker)."""

    def __init__(self, samples: list[tuple[str, int]], transform: Callable[[torch.Tensor], torch.Tensor],
                 augment: str) -> None:
        self.samples, self.transform, self.augment = samples, transform, augment

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, idx: int) -> tuple[torch.Tensor | None, int, str]:
        path, label = self.samples[idx]
        try:
            image = decode_image_file(path)
            ImageFiles.decodes += 1
            return self.transform(image).contiguous(), label, path
        except Exception as exc:  # decoders raise many types for broken files
            return None, label, f"{path}\0{type(exc).__name__}"

    def __getitem__(self, key: tuple[int, int | None]) -> tuple[torch.Tensor | None, int, str]:
        idx, seed = key
        if seed is not None and self.augment != "none":
            # the item's augmentation, the same for any worker count (the CPU generator only: torch.manual_seed
            # also queues CUDA, XPU and MTIA seeding, which costs more than decoding the image)
            torch.default_generator.manual_seed(seed * 1_000_003 + idx)
        return self.load(idx)


def _collate(items: list[tuple[torch.Tensor | None, int, str]]) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    good = [(x, y) for x, y, _ in items if x is not None]
    bad = [p for x, _, p in items if x is None]
    if not good:
        return torch.empty(0, dtype=torch.uint8), torch.empty(0, dtype=torch.long), bad
    from torch.utils.data import default_collate

    # default_collate stacks a worker's batch straight into shared memory (no copy when it is sent)
    return default_collate([x for x, _ in good]), torch.tensor([y for _, y in good], dtype=torch.long), bad


class _SeededBatches(Sampler):
    """Batches of ``(index, seed)`` keys: a seeded shuffle, the given index batches, or in order."""

    def __init__(self, n: int, batch_size: int, drop_last: bool) -> None:
        self.n, self.batch_size, self.drop_last = n, batch_size, drop_last
        self.shuffle: bool = False
        self.seed: int | None = None
        self.index_batches: list[list[int]] | None = None

    def set_epoch(self, shuffle: bool, seed: int | None, index_batches: Sequence[Sequence[int]] | None) -> None:
        self.shuffle, self.seed = shuffle, seed
        self.index_batches = [list(map(int, b)) for b in index_batches] if index_batches is not None else None

    def orders(self) -> list[list[int]]:
        if self.index_batches is not None:
            return self.index_batches
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed) if self.seed is not None else None
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        stop = self.n - self.n % self.batch_size if self.drop_last and self.n >= self.batch_size else self.n
        return [order[i:i + self.batch_size] for i in range(0, stop, self.batch_size)]

    def __iter__(self) -> Iterator[list[tuple[int, int | None]]]:
        seed = self.seed if self.seed is not None else int(torch.randint(0, 2**31 - 1, (1,)))
        for batch in self.orders():
            yield [(i, seed) for i in batch]

    def __len__(self) -> int:
        return len(self.orders())
