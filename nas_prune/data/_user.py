"""Your own data in nas-prune's layout: tensors, datasets or loaders -> :class:`DataBundle`; class checks.

Every stage reads a :class:`~nas_prune.data.DataBundle` (``train``, ``val``, ``test`` datasets of
``(image, label)`` items, ``num_classes``, ``input_size``). :func:`make_bundle` builds one from
what a PyTorch user already has; :func:`select_classes` keeps some classes of a bundle (labels
renumbered 0..k-1); :func:`check_num_classes` refuses a model whose classifier does not match the
data, in one line, before any training.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence, Union

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from nas_prune.data._arrays import ImageArrays, to_uint8_images
from nas_prune.data._sources import DataBundle
from nas_prune.errors import DataError

__all__ = ["SplitLike", "check_num_classes", "make_bundle", "select_classes", "to_bundle"]

#: What :func:`make_bundle` accepts for one split.
SplitLike = Union[Dataset, DataLoader, "tuple[torch.Tensor, torch.Tensor]"]


class _Relabelled(Dataset):
    """A dataset whose labels go through ``mapping`` (old class -> new class)."""

    def __init__(self, base: Dataset, indices: Sequence[int], mapping: dict[int, int]) -> None:
        self.base, self.indices, self.mapping = base, list(indices), mapping

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.base[self.indices[idx]]
        return x, torch.tensor(self.mapping[int(y)])


def _as_dataset(split: Any, what: str) -> Dataset:
    if isinstance(split, DataLoader):
        return split.dataset  # nas-prune batches the dataset itself (its own batch sizes and seeds)
    if isinstance(split, tuple) and len(split) == 2 and all(isinstance(t, torch.Tensor) for t in split):
        x, y = split
        if x.ndim != 4 or y.ndim != 1 or len(x) != len(y):
            raise DataError(f"{what} split: images must be [N, C, H, W] and labels [N] of the same N, got "
                            f"{tuple(x.shape)} and {tuple(y.shape)}: pass (images, labels)")
        if x.shape[-1] != x.shape[-2]:
            raise DataError(f"{what} split: images are {tuple(x.shape[1:])}, not square [C, S, S]: resize or crop them")
        if x.dtype == torch.uint8:  # raw pixels: nas-prune's normalisation, grey made 3-channel
            return ImageArrays(to_uint8_images(x, x.shape[-1]), y.long(), int(y.max()) + 1 if len(y) else 0)
        return TensorDataset(x.float(), y.long())  # already normalised: used as given
    if isinstance(split, Dataset) or (hasattr(split, "__getitem__") and hasattr(split, "__len__")
                                      and not isinstance(split, (list, tuple, str, bytes, dict))):
        return split  # type: ignore[return-value]
    raise DataError(f"{what} split is a {type(split).__name__}: pass a torch Dataset, a DataLoader or "
                    "(images, labels) tensors")


def _labels(ds: Dataset) -> torch.Tensor:
    for attr in ("labels", "targets"):
        labels = getattr(ds, attr, None)
        if labels is not None:
            return torch.as_tensor(labels).long().reshape(-1)
    if isinstance(ds, TensorDataset):
        return ds.tensors[1].long()
    return torch.tensor([int(ds[i][1]) for i in range(len(ds))], dtype=torch.long)  # type: ignore[arg-type]


def make_bundle(
    train: SplitLike,
    val: SplitLike,
    test: SplitLike | None = None,
    *,
    num_classes: int | None = None,
    name: str = "user",
) -> DataBundle:
    """Build the :class:`DataBundle` every stage reads from your own data.

    Each split is a torch ``Dataset`` of ``(image [C, H, W], label)`` items, a ``DataLoader``
    (its dataset is used) or an ``(images [N, C, H, W], labels [N])`` pair of tensors: uint8
    images get nas-prune's normalisation (and grey images three channels), float images are used
    as given. ``val`` scores candidates during the search; ``test`` (default: ``val``) is only
    for final figures. Images must be square (``input_size`` is their side).

    Example::

        data = make_bundle((x_train, y_train), (x_val, y_val), num_classes=7)
        check_num_classes(space, data)

    Args:
        train: Training split (teacher, gates, PruningNet, distillation, BatchNorm recalibration).
        val: Validation split.
        test: Test split (default: ``val``).
        num_classes: Classes of the task (default: largest label + 1, over every split).
        name: Shown in reports and errors.

    Raises:
        DataError: an empty split, non-square images, labels outside ``[0, num_classes)``, or
            fewer than two classes.
    """
    splits = {"train": _as_dataset(train, "train"), "val": _as_dataset(val, "val")}
    splits["test"] = _as_dataset(test, "test") if test is not None else splits["val"]
    labels = {}
    for key, ds in splits.items():
        if len(ds) == 0:  # type: ignore[arg-type]
            raise DataError(f"dataset {name}: the {key} split is empty: give it at least one labelled image")
        try:
            labels[key] = _labels(ds)
        except (TypeError, ValueError, IndexError, RuntimeError) as exc:
            raise DataError(f"dataset {name}: the {key} split's items are not (image, label) pairs ({exc}): "
                            "make __getitem__ return (image tensor [C, S, S], class index)") from None
    top = max(int(t.max()) for t in labels.values())
    n = int(num_classes) if num_classes is not None else top + 1
    for key, t in labels.items():
        lo, hi = int(t.min()), int(t.max())
        if lo < 0 or hi >= n:
            raise DataError(f"dataset {name}: {key} labels run {lo}..{hi} but num_classes is {n}: labels must be "
                            f"0..{n - 1} (renumber them, or use select_classes)")
    if n < 2 or int(torch.unique(labels["train"]).numel()) < 2:
        raise DataError(f"dataset {name} has a single class: a classifier needs at least two")
    x0 = splits["train"][0][0]
    if x0.ndim != 3 or x0.shape[-1] != x0.shape[-2]:
        raise DataError(f"dataset {name}: images are {tuple(x0.shape)}, not square [C, S, S]: resize or crop them")
    for ds in splits.values():
        if isinstance(ds, ImageArrays):
            ds.num_classes = n
    return DataBundle(name, splits["train"], splits["val"], splits["test"], n, int(x0.shape[-1]))


def to_bundle(data: Any) -> DataBundle:
    """A :class:`DataBundle` as is, or one built by :func:`make_bundle` from ``(train, val[, test])``.

    For APIs that take "the data" (a bundle from :func:`~nas_prune.data.load_data` or the user's
    splits) in one argument.

    Raises:
        DataError: ``data`` is neither (see :func:`make_bundle` for the checks on splits).
    """
    if isinstance(data, DataBundle):
        return data
    if isinstance(data, dict) and {"train", "val"} <= set(data):
        return make_bundle(data["train"], data["val"], data.get("test"), num_classes=data.get("num_classes"))
    if isinstance(data, (tuple, list)) and len(data) in (2, 3) and not all(isinstance(t, torch.Tensor) for t in data):
        return make_bundle(*data)
    raise DataError(f"data is a {type(data).__name__}: pass load_data(...), make_bundle(...) or (train, val[, test]) "
                    "splits (datasets, loaders or (images, labels) tensors)")


def select_classes(data: DataBundle, classes: Iterable[int]) -> DataBundle:
    """Keep only ``classes`` of every split, renumbered ``0..k-1`` in the order given.

    Example: ``select_classes(load_data("digits"), range(7))`` is a 7-class task.

    Raises:
        DataError: a class that the data does not have, or fewer than two classes.
    """
    keep = [int(c) for c in classes]
    if len(set(keep)) < 2:
        raise DataError(f"select_classes({keep}) keeps fewer than two classes: a classifier needs at least two")
    bad = [c for c in keep if not 0 <= c < data.num_classes]
    if bad:
        raise DataError(f"dataset {data.name} has classes 0..{data.num_classes - 1}, not {bad}: pick classes it has")
    mapping = {old: new for new, old in enumerate(keep)}

    def subset(ds: Dataset) -> Dataset:
        labels = _labels(ds)
        idx = torch.nonzero(torch.isin(labels, torch.tensor(keep)), as_tuple=True)[0]
        if isinstance(ds, ImageArrays):
            new_labels = torch.tensor([mapping[int(v)] for v in labels[idx]], dtype=torch.long)
            return ImageArrays(ds.images[idx], new_labels, len(keep), ds.preprocess)
        return _Relabelled(ds, idx.tolist(), mapping)

    return DataBundle(f"{data.name}[{','.join(map(str, keep))}]", subset(data.train), subset(data.val),
                      subset(data.test), len(keep), data.input_size)


def check_num_classes(space: Any, data: DataBundle) -> None:
    """Refuse a model whose classifier outputs do not match the data's classes (before training).

    Raises:
        DataError: ``space.model["num_classes"] != data.num_classes``, naming both counts.
    """
    model_classes = int((getattr(space, "model", None) or {}).get("num_classes", data.num_classes))
    if model_classes != data.num_classes:
        raise DataError(
            f"the model has {model_classes} outputs but dataset {data.name} has {data.num_classes} classes: build "
            f"the space with num_classes={data.num_classes}, or keep {model_classes} classes of the data with "
            f"select_classes(data, range({model_classes}))"
        )
    if data.input_size and tuple(getattr(space, "input_shape", ()))[-1:] not in ((), (data.input_size,)):
        raise DataError(f"the space takes {space.input_shape[-1]}x{space.input_shape[-1]} inputs but dataset "
                        f"{data.name} has {data.input_size}x{data.input_size} images: load the data with "
                        f"input_size={space.input_shape[-1]} or build the space at {data.input_size}")
