"""Dataset sources by name: ``digits``, ``fashion-mnist[:root]``, ``cifar10:root``, ``imagefolder:root``."""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import Dataset

from nas_prune.data._arrays import ImageArrays, to_uint8_images
from nas_prune.data._preprocess import DEFAULT_PREPROCESS, Preprocess
from nas_prune.errors import DataError

__all__ = ["DataBundle", "register_dataset", "load_data", "list_datasets", "FASHION_MNIST_ROOT"]

FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"


@dataclass
class DataBundle:
    """Train / validation / test splits of one dataset, and the preprocessing every split applies."""

    name: str
    train: Dataset
    val: Dataset
    test: Dataset
    num_classes: int
    input_size: int
    preprocess: Preprocess = DEFAULT_PREPROCESS


_Loader = Callable[[str | None, int, int], DataBundle]
_SOURCES: dict[str, _Loader] = {}


def register_dataset(name: str) -> Callable[[_Loader], _Loader]:
    """Register ``loader(root, input_size, seed) -> DataBundle`` under ``name``."""

    def deco(fn: _Loader) -> _Loader:
        _SOURCES[name] = fn
        return fn

    return deco


def list_datasets() -> list[str]:
    return sorted(_SOURCES)


def _split(n: int, fractions: tuple[float, ...], seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g)
    out, start = [], 0
    for i, f in enumerate(fractions):
        stop = n if i == len(fractions) - 1 else start + int(round(f * n))
        out.append(perm[start:stop])
        start = stop
    return out


def _check(bundle: DataBundle, source: str) -> DataBundle:
    for split in ("train", "val", "test"):
        ds = getattr(bundle, split)
        if len(ds) == 0:
            raise DataError(f"dataset {source}: the {split} split is empty: point it at a folder with images")
    labels = getattr(bundle.train, "labels", None)
    n_train_classes = int(torch.unique(labels).numel()) if isinstance(labels, torch.Tensor) else bundle.num_classes
    if bundle.num_classes < 2 or n_train_classes < 2:
        raise DataError(f"dataset {source} has a single class: a classifier needs at least two")
    return bundle


@register_dataset("digits")
def _digits(root: str | None, input_size: int, seed: int) -> DataBundle:
    """scikit-learn's bundled handwritten digits (1797 8x8 images), upsampled; split 60/20/20."""
    from sklearn.datasets import load_digits

    d = load_digits()
    images = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    data = ImageArrays(to_uint8_images(images, input_size), torch.tensor(d.target), 10)
    tr, va, te = _split(len(data), (0.6, 0.2, 0.2), seed=0)  # fixed split: comparable everywhere
    return DataBundle("digits", data.subset(tr), data.subset(va), data.subset(te), 10, input_size)


def _read_idx(path: Path) -> torch.Tensor:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
        magic, = struct.unpack(">I", raw[:4])
        ndim = magic & 0xFF
        dims = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
        data = torch.frombuffer(bytearray(raw[4 + 4 * ndim :]), dtype=torch.uint8)
        return data[: int(torch.tensor(dims).prod())].view(*dims)
    except (OSError, EOFError, struct.error, RuntimeError, ValueError) as exc:
        raise DataError(f"{path} is not a readable idx file ({exc}): reinstall dataset-fashion-mnist") from None


def _find(root: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (root / name).is_file():
            return root / name
    raise DataError(
        f"fashion-mnist file {stem}(.gz) not found in {root}: install the Debian package "
        "dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or pass fashion-mnist:<root>"
    )


@register_dataset("fashion-mnist")
def _fashion_mnist(root: str | None, input_size: int, seed: int) -> DataBundle:
    """Fashion-MNIST from idx files (Debian's dataset-fashion-mnist); 55k train, 5k val, 10k test."""
    base = Path(root or FASHION_MNIST_ROOT)
    x_train = _read_idx(_find(base, "train-images-idx3-ubyte")).unsqueeze(1)
    y_train = _read_idx(_find(base, "train-labels-idx1-ubyte")).long()
    x_test = _read_idx(_find(base, "t10k-images-idx3-ubyte")).unsqueeze(1)
    y_test = _read_idx(_find(base, "t10k-labels-idx1-ubyte")).long()
    train = ImageArrays(to_uint8_images(x_train, input_size), y_train, 10)
    test = ImageArrays(to_uint8_images(x_test, input_size), y_test, 10)
    val_idx, tr_idx = _split(len(train), (5000 / len(train), 1.0), seed=0)
    return DataBundle("fashion-mnist", train.subset(tr_idx), train.subset(val_idx), test, 10, input_size)


def _torchvision_transform(input_size: int, preprocess: Preprocess = DEFAULT_PREPROCESS) -> Callable:
    """Image file -> normalised tensor: resized to ``input_size`` squared, or (``preprocess.resize``)
    the shorter side resized and the centre ``input_size`` square cut out."""
    from torchvision import transforms

    mean, std = preprocess.per_channel(3)
    size = [transforms.Resize(preprocess.resize), transforms.CenterCrop(input_size)] if preprocess.resize \
        else [transforms.Resize((input_size, input_size))]
    return transforms.Compose([
        *size,
        transforms.ToTensor(),
        transforms.Normalize(mean, std),
    ])


def _apply_preprocess(ds: Dataset, preprocess: Preprocess, input_size: int) -> None:
    """Make ``ds`` (one of the sources' datasets, or a ``Subset`` of one) normalise with ``preprocess``."""
    from torch.utils.data import Subset

    if isinstance(ds, ImageArrays):
        ds.preprocess = preprocess
    elif isinstance(ds, _SafeImageFolder):
        ds.inner.transform = _torchvision_transform(input_size, preprocess)
    elif isinstance(ds, Subset):
        _apply_preprocess(ds.dataset, preprocess, input_size)


@register_dataset("cifar10")
def _cifar10(root: str | None, input_size: int, seed: int) -> DataBundle:
    """CIFAR-10 from local files in torchvision's layout (never downloads); 45k/5k/10k."""
    from torchvision.datasets import CIFAR10

    if not root:
        raise DataError("cifar10 needs a root: use cifar10:<folder with cifar-10-batches-py>")
    try:
        train = CIFAR10(root, train=True, download=False)
        test = CIFAR10(root, train=False, download=False)
    except RuntimeError as exc:
        raise DataError(
            f"CIFAR-10 not found under {root} ({str(exc).splitlines()[0]}): unpack cifar-10-python.tar.gz there"
        ) from None

    def arrays(ds: CIFAR10) -> ImageArrays:
        x = torch.tensor(ds.data).permute(0, 3, 1, 2).contiguous()
        return ImageArrays(to_uint8_images(x, input_size), torch.tensor(ds.targets), 10)

    full, te = arrays(train), arrays(test)
    va, tr = _split(len(full), (0.1, 0.9), seed=0)
    return DataBundle("cifar10", full.subset(tr), full.subset(va), te, 10, input_size)


class _SafeImageFolder(Dataset):
    """torchvision ``ImageFolder`` whose unreadable files raise a one-line :class:`DataError`."""

    def __init__(self, root: Path, input_size: int) -> None:
        from torchvision.datasets import ImageFolder

        try:
            self.inner = ImageFolder(str(root), transform=_torchvision_transform(input_size))
        except (FileNotFoundError, OSError) as exc:
            raise DataError(f"image folder {root}: {exc}: expect <root>/<class>/<image> files") from None
        self.labels = torch.tensor(self.inner.targets, dtype=torch.long)
        self.num_classes = len(self.inner.classes)

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            x, y = self.inner[idx]
        except Exception as exc:  # PIL raises many types for broken files
            path = self.inner.samples[idx][0]
            raise DataError(f"image {path} cannot be read ({type(exc).__name__}): delete or replace it") from None
        return x, torch.tensor(y)


@register_dataset("imagefolder")
def _imagefolder(root: str | None, input_size: int, seed: int) -> DataBundle:
    """``root/train`` (+ ``root/val``, ``root/test`` if present) or one folder split 80/10/10."""
    from torch.utils.data import Subset

    if not root:
        raise DataError("imagefolder needs a root: use imagefolder:<folder>")
    base = Path(root)
    if not base.is_dir():
        raise DataError(f"image folder {base} does not exist: check the path")
    if (base / "train").is_dir():
        train = _SafeImageFolder(base / "train", input_size)
        val = _SafeImageFolder(base / "val", input_size) if (base / "val").is_dir() else None
        test = _SafeImageFolder(base / "test", input_size) if (base / "test").is_dir() else val
        if val is None:
            va, tr = _split(len(train), (0.1, 0.9), seed=0)
            val, train_ds = Subset(train, va.tolist()), Subset(train, tr.tolist())
            train_ds.labels = train.labels[tr]  # type: ignore[attr-defined]
            test = test or val
            bundle = DataBundle("imagefolder", train_ds, val, test, train.num_classes, input_size)
            return _check(bundle, f"imagefolder:{root}")
        return _check(DataBundle("imagefolder", train, val, test or val, train.num_classes, input_size), f"imagefolder:{root}")
    full = _SafeImageFolder(base, input_size)
    tr, va, te = _split(len(full), (0.8, 0.1, 0.1), seed=0)
    train_ds = Subset(full, tr.tolist())
    train_ds.labels = full.labels[tr]  # type: ignore[attr-defined]
    bundle = DataBundle("imagefolder", train_ds, Subset(full, va.tolist()), Subset(full, te.tolist()),
                        full.num_classes, input_size)
    return _check(bundle, f"imagefolder:{root}")


def load_data(spec: str, *, input_size: int = 32, train_subset: int | None = None, seed: int = 0,
              preprocess: Preprocess | None = None) -> DataBundle:
    """Load a dataset by spec ``name[:root]``.

    Args:
        spec: ``digits``, ``fashion-mnist[:root]``, ``cifar10:root`` or ``imagefolder:root``.
        input_size: Images are resized to ``input_size`` squared, 3 channels.
        train_subset: Keep only this many training images (a class-balanced random subset).
        seed: Seed of the subset.
        preprocess: The normalisation the network expects (its training's mean and std; for
            image folders also the resize before the centre crop); nas-prune's default if None.
    """
    name, _, root = spec.partition(":")
    if name not in _SOURCES:
        raise DataError(f"unknown dataset {name!r}: use one of {', '.join(list_datasets())}")
    bundle = _check(_SOURCES[name](root or None, input_size, seed), spec)
    if preprocess is not None and preprocess != bundle.preprocess:
        for split in ("train", "val", "test"):
            _apply_preprocess(getattr(bundle, split), preprocess, input_size)
        bundle.preprocess = preprocess
    if train_subset is not None and train_subset < len(bundle.train):
        if train_subset < bundle.num_classes:
            raise DataError(f"train subset {train_subset} is smaller than the {bundle.num_classes} classes: use more")
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(bundle.train), generator=g)[:train_subset]
        if isinstance(bundle.train, ImageArrays):
            bundle.train = bundle.train.subset(idx)
        else:
            from torch.utils.data import Subset

            labels = getattr(bundle.train, "labels", None)
            bundle.train = Subset(bundle.train, idx.tolist())
            if labels is not None:
                bundle.train.labels = labels[idx]  # type: ignore[attr-defined]
    return bundle
