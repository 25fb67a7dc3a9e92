"""Model registry: names (and ``package.module:factory`` specs) to PyTorch models.

Like timm's registry, a model is built from a name instead of an if/else chain. Every
torchvision classification model is available by name; the ones below are registered with the
keyword arguments and tracing adapters they need and are tested by nas-prune.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator

import torch
from torch import nn

from nas_prune.errors import UnknownModelError

__all__ = ["ModelEntry", "register_model", "list_models", "get_entry", "build_model", "timm_preprocess", "TESTED_MODELS"]


@dataclass(frozen=True)
class ModelEntry:
    """How to build one named model.

    Attributes:
        name: Registry name.
        factory: Callable ``factory(num_classes=..., **kwargs) -> nn.Module``.
        kwargs: Extra keyword arguments always passed to the factory.
        trace_context: Context manager factory active while Torch-Pruning traces the model
            (used to stand in for operations Torch-Pruning cannot follow).
    """

    name: str
    factory: Callable[..., nn.Module]
    kwargs: dict[str, Any] = field(default_factory=dict)
    trace_context: Callable[[], ContextManager[None]] = contextlib.nullcontext


_REGISTRY: dict[str, ModelEntry] = {}

# The models nas-prune is tested on (tests/space builds, materializes and exports each).
TESTED_MODELS = (
    "resnet18",
    "resnet50",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    "efficientnet_b0",
    "regnet_x_400mf",
    "mnasnet1_0",
    "vgg11_bn",
    "squeezenet1_1",
    "googlenet",
    "densenet121",
    "convnext_tiny",
    "shufflenet_v2_x1_0",
)


def register_model(
    name: str,
    factory: Callable[..., nn.Module],
    *,
    kwargs: dict[str, Any] | None = None,
    trace_context: Callable[[], ContextManager[None]] = contextlib.nullcontext,
) -> ModelEntry:
    """Register ``factory`` under ``name`` and return its entry."""
    entry = ModelEntry(name, factory, dict(kwargs or {}), trace_context)
    _REGISTRY[name] = entry
    return entry


def _torchvision_factory(name: str) -> Callable[..., nn.Module]:
    def factory(**kwargs: Any) -> nn.Module:
        import torchvision

        return torchvision.models.get_model(name, weights=None, **kwargs)

    factory.__name__ = name
    return factory


@contextlib.contextmanager
def _traceable_channel_shuffle() -> Iterator[None]:
    """Let Torch-Pruning trace ShuffleNetV2, whose chunk and channel shuffle it cannot map.

    While tracing, each block runs an equivalent forward: ``chunk`` becomes two slices and the
    shuffle (view/transpose/view) an ``index_select`` with the same permutation. Torch-Pruning
    follows both, so every channel group that flows through a shuffle is found;
    :mod:`nas_prune.space` keeps those groups at full width (a shuffle interleaves the two halves,
    so their widths are not free) and prunes the branch-internal widths. The model itself is not
    changed.
    """
    from torchvision.models import shufflenetv2

    original = shufflenetv2.InvertedResidual.forward

    def shuffle_as_index_select(x: torch.Tensor, groups: int) -> torch.Tensor:
        c = x.size(1)
        perm = torch.arange(c, device=x.device).view(groups, c // groups).t().reshape(-1)
        return torch.index_select(x, 1, perm)

    def forward(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            half = x.size(1) // 2
            out = torch.cat((x[:, :half], self.branch2(x[:, half:])), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return shuffle_as_index_select(out, 2)

    shufflenetv2.InvertedResidual.forward = forward
    try:
        yield
    finally:
        shufflenetv2.InvertedResidual.forward = original


for _name in TESTED_MODELS:
    _kw: dict[str, Any] = {}
    _ctx: Callable[[], ContextManager[None]] = contextlib.nullcontext
    if _name == "googlenet":
        # Auxiliary heads exist only in training mode; they are not part of the deployed network.
        _kw = {"aux_logits": False, "init_weights": True}
    if _name.startswith("shufflenet"):
        _ctx = _traceable_channel_shuffle
    register_model(_name, _torchvision_factory(_name), kwargs=_kw, trace_context=_ctx)


def list_models(*, all_torchvision: bool = False) -> list[str]:
    """Names of registered models (and, optionally, of every torchvision classifier)."""
    names = set(_REGISTRY)
    if all_torchvision:
        import torchvision

        names |= set(torchvision.models.list_models(module=torchvision.models))
    return sorted(names)


def _import_user_module(module_name: str) -> Any:
    """Import ``module_name``, looking in the current directory first.

    ``nas-prune space mymodel:factory`` then finds ``./mymodel.py`` (or ``./mymodel/``) without
    ``PYTHONPATH=.``: a console script's ``sys.path`` does not hold the current directory.
    """
    cwd = os.getcwd()
    top = Path(cwd) / module_name.partition(".")[0]
    if not (top.with_suffix(".py").is_file() or (top / "__init__.py").is_file()):
        return importlib.import_module(module_name)
    sys.path.insert(0, cwd)
    try:
        return importlib.import_module(module_name)
    finally:
        if cwd in sys.path:
            sys.path.remove(cwd)


def _timm_factory(name: str) -> Callable[..., nn.Module]:
    def factory(**kwargs: Any) -> nn.Module:
        import timm

        return timm.create_model(name, pretrained=False, **kwargs)  # weights: the user's file (--teacher), never a hub

    factory.__name__ = name
    return factory


def _timm_entry(spec: str) -> ModelEntry:
    """``timm:NAME``: a model of timm (optional: ``pip install 'nas-prune[timm]'``), built without weights."""
    name = spec.partition(":")[2]
    try:
        import timm
    except ImportError:
        raise UnknownModelError(f"model {spec!r} needs timm: pip install 'nas-prune[timm]' (or pip install timm)") from None
    if not timm.is_model(name):
        raise UnknownModelError(f"timm has no model {name!r}: see timm.list_models() for the names")
    return register_model(spec, _timm_factory(name))


def timm_preprocess(spec: str) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The mean and std of a ``timm:NAME`` model's pretrained config (None for other models)."""
    if not spec.startswith("timm:"):
        return None
    import timm

    cfg = timm.get_pretrained_cfg(spec.partition(":")[2])
    if cfg is None:
        return None
    return tuple(cfg.mean), tuple(cfg.std)


def get_entry(spec: str) -> ModelEntry:
    """Resolve a registry name, a torchvision classifier name, ``timm:NAME`` or ``package.module:factory``."""
    if spec in _REGISTRY:
        return _REGISTRY[spec]
    if spec.startswith("timm:"):
        return _timm_entry(spec)
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        try:
            module = _import_user_module(module_name)
        except ImportError as exc:
            raise UnknownModelError(
                f"cannot import {module_name!r} for model {spec!r} ({exc}): run from the folder that holds it "
                "or put it on PYTHONPATH"
            ) from None
        factory = getattr(module, attr, None)
        if not callable(factory):
            raise UnknownModelError(
                f"{module_name!r} has no callable {attr!r}: give 'package.module:factory'"
            )
        return ModelEntry(spec, factory)
    import torchvision

    if spec in torchvision.models.list_models(module=torchvision.models):
        if spec.startswith("shufflenet"):
            return register_model(spec, _torchvision_factory(spec), trace_context=_traceable_channel_shuffle)
        return register_model(spec, _torchvision_factory(spec))
    raise UnknownModelError(
        f"unknown model {spec!r}: run 'nas-prune models' for the names, or give 'package.module:factory'"
    )


def build_model(spec: str, *, num_classes: int = 10, **kwargs: Any) -> nn.Module:
    """Build a model with random weights (nothing is downloaded) in eval mode."""
    entry = get_entry(spec)
    try:
        model = entry.factory(num_classes=num_classes, **{**entry.kwargs, **kwargs})
    except TypeError:
        if ":" not in spec:
            raise
        model = entry.factory(**{**entry.kwargs, **kwargs})  # a user factory without num_classes
    if not isinstance(model, nn.Module):
        raise UnknownModelError(f"factory for {spec!r} returned {type(model).__name__}, not an nn.Module")
    return model.eval()
