"""The network the user already has: trained weights in the usual layouts, and named pretrained weights.

A user arrives with a network trained elsewhere, saved the usual way: ``torch.save(model.state_dict(),
"net.pt")``, a training script's ``{"epoch": .., "model": ..., "optimizer": ...}``, a timm
checkpoint with ``state_dict`` and ``state_dict_ema``, weights saved through ``DataParallel`` /
DDP (``module.``) or a ``torch.compile``\\ d model (``_orig_mod.``), or nas-prune's own checkpoint.
:func:`load_weights` reads any of them with ``torch.load(weights_only=True)`` and loads them into
the space's model; a file for another model fails in one line naming the first missing and
unexpected keys and a shape that differs. A classifier trained for another number of classes (a
1000-class ImageNet network on a 10-class folder) is left at its new random initialisation and
reported, so the teacher stage fine-tunes it (transfer).

torchvision's named weights (``--weights IMAGENET1K_V1``) are read from the local torch hub cache
(``$TORCH_HOME/hub/checkpoints/``) and never downloaded (:func:`torchvision_weights`); their
preprocessing comes with them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlparse

import torch
from torch import nn

from nas_prune.data import Preprocess
from nas_prune.errors import InvalidFileError, NasPruneError

__all__ = [
    "STATE_DICT_KEYS",
    "WeightsReport",
    "extract_state_dict",
    "fit_state_dict",
    "load_weights",
    "read_weights_file",
    "torchvision_weights",
    "PretrainedWeightsError",
]

#: Keys under which training scripts and libraries store the model's weights, in the order tried
#: (the plain weights before an EMA copy: the EMA is used only when it is all there is).
STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "net", "network", "weights",
                   "state_dict_ema", "model_ema", "ema")
#: Prefixes that wrappers add to every key: DataParallel / DDP, torch.compile.
_PREFIXES = ("module.", "_orig_mod.")
#: torchvision's published DenseNet weights name BN/conv layers ``norm.1`` where the model has ``norm1``
#: (torchvision renames them in ``densenet._load_state_dict``; so do we).
_DENSENET_LEGACY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


class PretrainedWeightsError(InvalidFileError):
    """Weights that cannot be loaded into the model (another model, another layout, not on disk)."""


@dataclass
class WeightsReport:
    """What loading a weights file did.

    Attributes:
        source: The file read.
        key: Where in the file the weights were (``""`` for a plain state dict).
        loaded: Number of tensors loaded.
        replaced_classifier: Keys of the classifier left at their new initialisation because the
            file's classifier has another number of classes.
        file_classes: The file's class count when the classifier was replaced.
        preprocess: Preprocessing recorded in the file (a nas-prune checkpoint), else None.
    """

    source: str
    key: str
    loaded: int
    replaced_classifier: list[str] = field(default_factory=list)
    file_classes: int | None = None
    preprocess: Preprocess | None = None

    def describe(self) -> str:
        where = f" (under {self.key!r})" if self.key else ""
        text = f"{self.loaded} tensors from {self.source}{where}"
        if self.replaced_classifier:
            text += (f"; classifier for {self.file_classes} classes replaced for the data's classes "
                     f"({', '.join(self.replaced_classifier)}): the teacher is fine-tuned first (transfer)")
        return text

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "key": self.key, "loaded": self.loaded,
                "replaced_classifier": list(self.replaced_classifier), "file_classes": self.file_classes}


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def extract_state_dict(obj: Any, source: str) -> tuple[dict[str, torch.Tensor], str]:
    """The weights in a loaded checkpoint ``obj`` and the key they were under (``""``: ``obj`` itself).

    Wrapper prefixes (``module.``, ``_orig_mod.``) are removed from every key, and torchvision's legacy
    DenseNet names (``norm.1``) become the model's (``norm1``).

    Raises:
        PretrainedWeightsError: no state dict in it (the message lists the keys it has).
    """
    state: Any = None
    key = ""
    if _is_state_dict(obj):
        state = obj
    elif isinstance(obj, Mapping):
        for k in STATE_DICT_KEYS:
            if _is_state_dict(obj.get(k)):
                state, key = obj[k], k
                break
    if state is None:
        have = ", ".join(map(str, list(obj)[:8])) if isinstance(obj, Mapping) else type(obj).__name__
        raise PretrainedWeightsError(
            f"{source} holds no state dict (found: {have}): save the weights with "
            f"torch.save(model.state_dict(), path), or under one of the keys {', '.join(STATE_DICT_KEYS[:4])}")
    out: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        changed = True
        while changed:
            changed = False
            for prefix in _PREFIXES:
                if name.startswith(prefix):
                    name, changed = name[len(prefix):], True
        legacy = _DENSENET_LEGACY.match(name)
        if legacy:
            name = legacy.group(1) + legacy.group(2)
        out[name] = tensor
    return out, key


def _classifier_change(model_state: Mapping[str, torch.Tensor], file_state: Mapping[str, torch.Tensor],
                       num_classes: int | None, differ: list[str]) -> int | None:
    """The file's class count if every differing shape is the classifier's output dimension, else None."""
    if not differ or num_classes is None:
        return None
    counts = set()
    for k in differ:
        a, b = tuple(model_state[k].shape), tuple(file_state[k].shape)
        if len(a) != len(b) or a[0] != num_classes or a[1:] != b[1:]:
            return None
        counts.add(b[0])
    return counts.pop() if len(counts) == 1 and len(differ) <= 2 else None


def fit_state_dict(model: nn.Module, state: Mapping[str, torch.Tensor], *, source: str, key: str = "",
                   num_classes: int | None = None) -> WeightsReport:
    """Load ``state`` into ``model`` in place, strictly but for a classifier of another class count.

    Args:
        model: The network (the space's base model, built for the data's classes).
        state: Weights, prefixes already removed (:func:`extract_state_dict`).
        source: The file, for messages.
        key: Where in the file the weights were, for the report.
        num_classes: The model's class count: a classifier whose output dimension differs from it
            (and nothing else) is left at its initialisation and reported.

    Raises:
        PretrainedWeightsError: keys missing or unexpected, or shapes that differ elsewhere (one line
            naming the first of each).
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    differ = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    file_classes = _classifier_change(own, state, num_classes, differ)
    if missing or unexpected or (differ and file_classes is None):
        parts = []
        if missing:
            parts.append(f"missing keys {', '.join(missing[:3])}" + (f" ({len(missing)} in all)" if len(missing) > 3 else ""))
        if unexpected:
            parts.append(f"unexpected keys {', '.join(unexpected[:3])}"
                         + (f" ({len(unexpected)} in all)" if len(unexpected) > 3 else ""))
        if differ:
            k = differ[0]
            parts.append(f"{k} is {list(state[k].shape)} in the file but {list(own[k].shape)} in the model")
        raise PretrainedWeightsError(
            f"weights {source} do not fit the model: {'; '.join(parts)}: give the weights of this network "
            "(the same --model and its arguments) or the model that made them")
    replaced = differ if file_classes is not None else []
    load = {k: v for k, v in state.items() if k not in replaced}
    model.load_state_dict(load, strict=False)
    return WeightsReport(source, key, len(load), list(replaced), file_classes)


def load_weights(model: nn.Module, path: str | os.PathLike[str], *, num_classes: int | None = None,
                 space_id: str | None = None) -> WeightsReport:
    """Load the trained weights in ``path`` (any layout above) into ``model``, in place.

    Args:
        model: The unpruned network to load into.
        path: A plain state dict, a dict holding one under a usual key, or a nas-prune checkpoint.
        num_classes: The model's class count (a classifier for another count is replaced).
        space_id: The run's space: a nas-prune checkpoint of another space, or of a pruned network,
            is refused.

    Raises:
        PretrainedWeightsError: the file is missing, unsafe, holds no weights or other ones.
    """
    path = Path(path)
    obj = read_weights_file(path)
    recorded = None
    if isinstance(obj, Mapping) and obj.get("format") == "nas-prune/model":
        if obj.get("channels"):
            raise PretrainedWeightsError(f"{path} is a pruned nas-prune model: give the unpruned teacher's weights")
        if space_id is not None and obj.get("space") not in (None, space_id):
            raise PretrainedWeightsError(f"{path} is a nas-prune model of space {obj.get('space')!r}, not {space_id!r}: "
                                         "use the matching --model, --input-size and data")
        if obj.get("preprocess") is not None:
            recorded = Preprocess.from_json(obj["preprocess"])
    state, key = extract_state_dict(obj, str(path))
    report = fit_state_dict(model, state, source=str(path), key=key, num_classes=num_classes)
    report.preprocess = recorded
    return report


#: The file read by a ``keep=True`` call, for the next read of the same unchanged file (read once per run).
_KEPT: dict[tuple[str, int, int], Any] = {}


def read_weights_file(path: str | os.PathLike[str], *, keep: bool = False) -> Any:
    """``torch.load(path, weights_only=True)`` with one-line errors; checks that it holds a state dict.

    ``keep``: hold what was read for the next call on the same unchanged file, which takes it (the
    run's settings check the user's file when they are parsed; the teacher stage then loads it
    without reading the file again).

    Raises:
        PretrainedWeightsError: missing, unsafe (a pickled object), unreadable, or no state dict in it.
    """
    path = Path(path)
    if not path.is_file():
        raise PretrainedWeightsError(f"weights file {path} does not exist: check the path")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key in _KEPT:
        return _KEPT[key] if keep else _KEPT.pop(key)
    obj = _read(path)
    if keep:
        _KEPT.clear()
        _KEPT[key] = obj
    return obj


def _read(path: Path) -> Any:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError, RuntimeError, EOFError, ...
        text = str(exc).strip()
        if "weights_only" in text.lower() or "GLOBAL" in text:
            raise PretrainedWeightsError(
                f"weights file {path} holds a pickled object (a whole model?), which would run code on load and is "
                "refused: save model.state_dict() instead") from None
        first = text.splitlines()[0][:120] if text else type(exc).__name__
        raise PretrainedWeightsError(f"weights file {path} cannot be read ({first}): save the weights with "
                                     "torch.save(model.state_dict(), path)") from None
    extract_state_dict(obj, str(path))  # a layout it cannot read fails now, in one line
    return obj


@dataclass(frozen=True)
class NamedWeights:
    """torchvision's named weights of one model, as found on this machine."""

    name: str
    path: Path
    num_classes: int
    preprocess: Preprocess
    crop_size: int


def torchvision_weights(model: str, weights: str) -> NamedWeights:
    """torchvision's ``weights`` (``IMAGENET1K_V1``, ``DEFAULT``...) of ``model``, from the local hub cache.

    Nothing is downloaded: the file must already be in ``$TORCH_HOME/hub/checkpoints/`` (torch's
    cache, ``~/.cache/torch/hub/checkpoints/`` by default) under the name torchvision gives it.

    Raises:
        NasPruneError: not a torchvision model, or no such weights (the names it has are listed).
        PretrainedWeightsError: the file is not there (the message gives its exact path and URL).
    """
    import torchvision

    if model not in torchvision.models.list_models(module=torchvision.models):
        raise NasPruneError(f"--weights {weights}: {model!r} is not a torchvision classifier; for your own network "
                            "give its trained weights with --teacher PATH")
    enum = torchvision.models.get_model_weights(model)
    try:
        w = enum[weights.upper()] if weights.upper() != "DEFAULT" else enum.DEFAULT
    except KeyError:
        names = ", ".join(["DEFAULT", *(m.name for m in enum)])
        raise NasPruneError(f"--weights {weights}: {model} has the weights {names}") from None
    file = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(w.url).path)
    if not file.is_file():
        raise PretrainedWeightsError(
            f"torchvision weights {model} {w.name} are not on this machine (nas-prune never downloads): put "
            f"{w.url} at {file} (or set TORCH_HOME to the folder whose hub/checkpoints/ holds it)")
    t = w.transforms()
    preprocess = Preprocess(tuple(t.mean), tuple(t.std), int(t.resize_size[0]), source=f"{model} {w.name}")
    return NamedWeights(f"{model}.{w.name}", file, len(w.meta["categories"]), preprocess, int(t.crop_size[0]))
