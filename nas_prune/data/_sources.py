"""Dataset sources by name: ``digits``, ``fashion-mnist[:root]``, ``cifar10:root``, ``imagefolder:root``."""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import Dataset

from nas_prune.data._arrays import ImageArrays, to_uint8_images
from nas_prune.data._files import AUGMENTATIONS, MAX_BAD_FRACTION, ImageFiles
from nas_prune.data._preprocess import DEFAULT_PREPROCESS, Preprocess
from nas_prune.errors import DataError

__all__ = ["DataBundle", "register_dataset", "load_data", "list_datasets", "default_augment", "FASHION_MNIST_ROOT",
           "fashion_mnist_arrays"]

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
    #: Training augmentation: ``none`` or ``standard`` (see :mod:`nas_prune.data._files`).
    augment: str = "none"
    #: Where each split came from (a folder, or a seeded share of one), as recorded in the run's files.
    splits: dict[str, str] = field(default_factory=dict)

    def bad_files(self) -> dict[str, dict]:
        """Unreadable files skipped so far in this process, per split (image folders only)."""
        out = {}
        for split in ("train", "val", "test"):
            bad = getattr(getattr(self, split), "bad", None)
            if bad is not None and bad.paths:
                out[split] = bad.to_json()
        return out


_Loader = Callable[[str | None, int, int], DataBundle]
_SOURCES: dict[str, _Loader] = {}
_AUGMENT: dict[str, str] = {}


def register_dataset(name: str, *, augment: str = "none") -> Callable[[_Loader], _Loader]:
    """Register ``loader(root, input_size, seed) -> DataBundle`` under ``name``.

    ``augment`` is the dataset's default training augmentation (``--augment`` overrides it):
    ``standard`` for photos, ``none`` where a flip changes the class (digits).
    """

    def deco(fn: _Loader) -> _Loader:
        _SOURCES[name] = fn
        _AUGMENT[name] = augment
        return fn

    return deco


def default_augment(spec: str) -> str:
    """The training augmentation dataset ``spec`` gets unless told otherwise."""
    return _AUGMENT.get(spec.partition(":")[0], "none")


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


def fashion_mnist_arrays(root: str | Path | None = None, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST's ``train`` (60k) or ``test`` (10k) split as uint8 ``[N, 28, 28]`` images and labels.

    Read from idx files (Debian's ``dataset-fashion-mnist`` by default); never downloaded.
    """
    base = Path(root or FASHION_MNIST_ROOT)
    stem = {"train": "train", "test": "t10k"}[split]
    return _read_idx(_find(base, f"{stem}-images-idx3-ubyte")), _read_idx(_find(base, f"{stem}-labels-idx1-ubyte")).long()


@register_dataset("fashion-mnist")
def _fashion_mnist(root: str | None, input_size: int, seed: int) -> DataBundle:
    """Fashion-MNIST from idx files (Debian's dataset-fashion-mnist); 55k train, 5k val, 10k test."""
    x_train, y_train = fashion_mnist_arrays(root, "train")
    x_test, y_test = fashion_mnist_arrays(root, "test")
    x_train, x_test = x_train.unsqueeze(1), x_test.unsqueeze(1)
    train = ImageArrays(to_uint8_images(x_train, input_size), y_train, 10)
    test = ImageArrays(to_uint8_images(x_test, input_size), y_test, 10)
    val_idx, tr_idx = _split(len(train), (5000 / len(train), 1.0), seed=0)
    return DataBundle("fashion-mnist", train.subset(tr_idx), train.subset(val_idx), test, 10, input_size)


def _apply_preprocess(ds: Dataset, preprocess: Preprocess) -> None:
    """Make ``ds`` (one of the sources' datasets, or a ``Subset`` of one) normalise with ``preprocess``."""
    from torch.utils.data import Subset

    if isinstance(ds, (ImageArrays, ImageFiles)):
        ds.preprocess = preprocess
    elif isinstance(ds, Subset):
        _apply_preprocess(ds.dataset, preprocess)


@register_dataset("cifar10", augment="standard")
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


def _scan(root: Path, class_to_idx: dict[str, int] | None = None) -> tuple[list[tuple[str, int]], list[str]]:
    """``(path, class index)`` of every image under ``root/<class>/`` (torchvision's folder rules)."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    try:
        classes, found = find_classes(str(root))
        if class_to_idx is not None:
            extra = sorted(set(classes) - set(class_to_idx))
            if extra:
                raise DataError(f"image folder {root} has classes the training folder does not ({', '.join(extra[:5])}): "
                                "give every split the same class folders")
            found = {c: class_to_idx[c] for c in classes}
        samples = make_dataset(str(root), found, extensions=IMG_EXTENSIONS, allow_empty=class_to_idx is not None)
    except (FileNotFoundError, OSError) as exc:
        raise DataError(f"image folder {root}: {exc}: expect <root>/<class>/<image> files") from None
    return samples, classes


@register_dataset("imagefolder", augment="standard")
def _imagefolder(root: str | None, input_size: int, seed: int) -> DataBundle:
    """``root/train`` (+ ``root/val``, ``root/test`` if present) or one folder split 80/10/10.

    Splits without a folder of their own are drawn with seed 0 (the same on every machine) and
    recorded in :attr:`DataBundle.splits`.
    """
    if not root:
        raise DataError("imagefolder needs a root: use imagefolder:<folder>")
    base = Path(root)
    if not base.is_dir():
        raise DataError(f"image folder {base} does not exist: check the path")

    def files(samples: list[tuple[str, int]], classes: list[str], where: Path) -> ImageFiles:
        return ImageFiles(samples, classes, input_size, where=str(where))

    if (base / "train").is_dir():
        samples, classes = _scan(base / "train")
        to_idx = {c: i for i, c in enumerate(classes)}
        splits = {"train": str(base / "train")}
        held = {}
        for split in ("val", "test"):
            if (base / split).is_dir():
                held[split] = files(_scan(base / split, to_idx)[0], classes, base / split)
                splits[split] = str(base / split)
        train = files(samples, classes, base / "train")
        if "val" not in held:
            va, tr = _split(len(train), (0.1, 0.9), seed=0)
            held["val"], train = train.view(indices=va), train.view(indices=tr)
            splits["train"], splits["val"] = (f"90% of {base / 'train'} (seed 0)", f"10% of {base / 'train'} (seed 0)")
        if "test" not in held:
            held["test"], splits["test"] = held["val"], splits["val"]
        bundle = DataBundle("imagefolder", train, held["val"], held["test"], len(classes), input_size, splits=splits)
        return _check(bundle, f"imagefolder:{root}")
    samples, classes = _scan(base)
    full = files(samples, classes, base)
    tr, va, te = _split(len(full), (0.8, 0.1, 0.1), seed=0)
    splits = {k: f"{share} of {base} (seed 0)" for k, share in (("train", "80%"), ("val", "10%"), ("test", "10%"))}
    bundle = DataBundle("imagefolder", full.view(indices=tr), full.view(indices=va), full.view(indices=te),
                        len(classes), input_size, splits=splits)
    return _check(bundle, f"imagefolder:{root}")


def load_data(spec: str, *, input_size: int = 32, train_subset: int | None = None, seed: int = 0,
              preprocess: Preprocess | None = None, augment: str | None = None, workers: int | None = None,
              strict: bool = False, max_bad_fraction: float = MAX_BAD_FRACTION) -> DataBundle:
    """Load a dataset by spec ``name[:root]``.

    Args:
        spec: ``digits``, ``fashion-mnist[:root]``, ``cifar10:root`` or ``imagefolder:root``.
        input_size: Images are resized to ``input_size`` squared, 3 channels.
        train_subset: Keep only this many training images (a class-balanced random subset).
        seed: Seed of the subset.
        preprocess: The normalisation the network expects (its training's mean and std; for
            image folders also the resize before the centre crop); nas-prune's default if None.
        augment: Training augmentation, ``none`` or ``standard`` (default: the dataset's, see
            :func:`default_augment`); evaluation splits are never augmented.
        workers: Loader worker processes for image folders (default: the cores this process may use).
        strict: Any unreadable image file is an error (default: skipped and counted, up to
            ``max_bad_fraction`` of a split).
    """
    name, _, root = spec.partition(":")
    if name not in _SOURCES:
        raise DataError(f"unknown dataset {name!r}: use one of {', '.join(list_datasets())}")
    augment = augment or default_augment(spec)
    if augment not in AUGMENTATIONS:
        raise DataError(f"augment {augment!r}: use one of {', '.join(AUGMENTATIONS)}")
    if workers is not None and workers < 0:
        raise DataError(f"workers {workers}: give 0 (read in this process) or more")
    bundle = _check(_SOURCES[name](root or None, input_size, seed), spec)
    if preprocess is not None and preprocess != bundle.preprocess:
        for split in ("train", "val", "test"):
            _apply_preprocess(getattr(bundle, split), preprocess)
        bundle.preprocess = preprocess
    for split in ("train", "val", "test"):
        ds = getattr(bundle, split)
        if isinstance(ds, ImageFiles):
            if workers is not None:
                ds.workers = workers
            ds.bad.max_fraction = 0.0 if strict else max_bad_fraction
    if train_subset is not None and train_subset < len(bundle.train):
        if train_subset < bundle.num_classes:
            raise DataError(f"train subset {train_subset} is smaller than the {bundle.num_classes} classes: use more")
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(bundle.train), generator=g)[:train_subset]
        if isinstance(bundle.train, ImageArrays):
            bundle.train = bundle.train.subset(idx)
        elif isinstance(bundle.train, ImageFiles):
            bundle.train = bundle.train.view(indices=idx)
        else:
            from torch.utils.data import Subset

            labels = getattr(bundle.train, "labels", None)
            bundle.train = Subset(bundle.train, idx.tolist())
            if labels is not None:
                bundle.train.labels = labels[idx]  # type: ignore[attr-defined]
        bundle.splits["train"] = f"{train_subset} images of {bundle.splits.get('train', 'the training split')} (seed {seed})"
    bundle.augment = augment
    if isinstance(bundle.train, (ImageArrays, ImageFiles)) and bundle.train.augment != augment:
        bundle.train = bundle.train.view(augment=augment)
    return bundle
