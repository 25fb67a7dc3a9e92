"""The channel search space of a model: one gene per group of coupled channels."""

from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch
from torch import nn

from nas_prune import models as model_registry
from nas_prune._io import describe_error, read_json, require, require_header, write_json
from nas_prune.errors import InvalidArchitectureError, InvalidFileError, NasPruneError
from nas_prune.space._arch import Architecture
from nas_prune.space._gene import Gene, width_choices
from nas_prune.space._graph import LayerInfo, analyse_model, layer_macs, layer_params

__all__ = ["ChannelSpace", "SPACE_FORMAT", "SPACE_VERSION"]

SPACE_FORMAT = "nas-prune/space"
SPACE_VERSION = 1


@dataclass(frozen=True)
class ChannelSpace:
    """A channel search space derived from a model.

    Build one with :meth:`from_model` (or :meth:`from_name`), save it with :meth:`save` and load it
    with :meth:`load`. A loaded space rebuilds its base model (:meth:`build_model`), exposes an NNI
    search space (:meth:`nni_search_space`) and Optuna distributions
    (:meth:`optuna_distributions`), and counts the parameters and FLOPs of any architecture.
    """

    id: str
    model: dict[str, Any]  # {"spec": str, "num_classes": int, "kwargs": {...}}
    input_shape: tuple[int, ...]  # (C, H, W)
    round_to: int
    min_ratio: float
    genes: tuple[Gene, ...]
    layers: dict[str, LayerInfo] = field(repr=False)
    fixed_params: int = 0

    # ------------------------------------------------------------------ building
    @classmethod
    def from_model(
        cls,
        model: nn.Module,
        example_input: torch.Tensor,
        *,
        model_spec: str | None = None,
        num_classes: int | None = None,
        model_kwargs: Mapping[str, Any] | None = None,
        round_to: int = 8,
        min_ratio: float = 0.1,
    ) -> "ChannelSpace":
        """Derive the space of ``model`` with Torch-Pruning's dependency graph.

        Args:
            model: The network; it is traced, not changed.
            example_input: A batch of one input (its shape is the space's input shape).
            model_spec: Registry name or ``package.module:factory`` that rebuilds the model
                (needed for :meth:`build_model`); ``None`` for a model that cannot be rebuilt.
            num_classes: Classifier outputs (read from the model when ``None``).
            model_kwargs: Extra keyword arguments for the factory.
            round_to: Channel counts are multiples of this (SIMD-friendly), default 8.
            min_ratio: Smallest fraction of a group's width a gene may keep, default 0.1.
        """
        if round_to < 1 or not 0 < min_ratio <= 1:
            raise NasPruneError(f"round_to={round_to}, min_ratio={min_ratio}: need round_to >= 1 and 0 < min_ratio <= 1")
        entry = model_registry.get_entry(model_spec) if model_spec else None
        trace_context = entry.trace_context if entry else model_registry.ModelEntry("", nn.Module).trace_context
        layers, groups, fixed_params = analyse_model(model, example_input, trace_context=trace_context)
        genes = []
        for g in groups:
            choices, step = width_choices(g.width, round_to=round_to, min_ratio=min_ratio, channel_groups=g.channel_groups)
            if g.fixed:
                choices = [g.width]
            genes.append(Gene(g.root, g.width, tuple(choices), step, tuple(g.members), g.fixed))
        if num_classes is None:
            with torch.no_grad():
                num_classes = int(model(example_input).shape[-1])
        spec = {"spec": model_spec, "num_classes": int(num_classes), "kwargs": dict(model_kwargs or {})}
        shape = tuple(int(s) for s in example_input.shape[1:])
        digest = hashlib.sha1(
            json.dumps([spec, shape, round_to, min_ratio, [g.to_json() for g in genes]], sort_keys=True).encode()
        ).hexdigest()[:10]
        name = (model_spec or type(model).__name__).replace(":", ".").split(".")[-1]
        space_id = f"{name}-{shape[-1]}px-{num_classes}c-{digest}"
        return cls(space_id, spec, shape, round_to, min_ratio, tuple(genes), layers, fixed_params)

    @classmethod
    def from_name(
        cls,
        spec: str,
        *,
        input_size: int = 32,
        num_classes: int = 10,
        round_to: int = 8,
        min_ratio: float = 0.1,
        trace_seconds: float | None = None,
    ) -> "ChannelSpace":
        """Build the space of a registered model (or ``package.module:factory``).

        ``trace_seconds`` bounds the tracing (:func:`~nas_prune.space.trace_time_limit`): a model
        that takes longer is refused with an :class:`UnsupportedModelError` naming it.
        """
        model = model_registry.build_model(spec, num_classes=num_classes)
        example = torch.randn(1, 3, input_size, input_size)
        if trace_seconds is None:
            return cls.from_model(
                model, example, model_spec=spec, num_classes=num_classes, round_to=round_to, min_ratio=min_ratio
            )
        from nas_prune.space._trace import trace_time_limit

        with trace_time_limit(trace_seconds, spec):
            return cls.from_model(
                model, example, model_spec=spec, num_classes=num_classes, round_to=round_to, min_ratio=min_ratio
            )

    def build_model(self) -> nn.Module:
        """Rebuild the unpruned base model (random weights, eval mode)."""
        if not self.model.get("spec"):
            raise NasPruneError(f"space {self.id} has no model spec: build the model yourself and pass it")
        return model_registry.build_model(
            self.model["spec"], num_classes=self.model["num_classes"], **self.model.get("kwargs", {})
        )

    def example_input(self, batch: int = 1) -> torch.Tensor:
        return torch.randn(batch, *self.input_shape)

    @property
    def trace_context(self) -> Any:
        spec = self.model.get("spec")
        return model_registry.get_entry(spec).trace_context if spec else model_registry.ModelEntry("", nn.Module).trace_context

    # ------------------------------------------------------------------ genes
    @property
    def searchable_genes(self) -> tuple[Gene, ...]:
        return tuple(g for g in self.genes if g.searchable)

    def gene(self, name: str) -> Gene:
        for g in self.genes:
            if g.name == name:
                return g
        raise InvalidArchitectureError(f"space {self.id} has no gene {name!r}: use the gene names of the space")

    # ------------------------------------------------------------------ architectures
    def full(self) -> Architecture:
        """The unpruned architecture."""
        return Architecture(self.id, {g.name: g.width for g in self.genes})

    def uniform(self, ratio: float) -> Architecture:
        """Every gene at the choice nearest to ``ratio`` of its width."""
        return Architecture(self.id, {g.name: g.snap(ratio * g.width) for g in self.genes})

    def sample(self, seed: int | random.Random | None = None) -> Architecture:
        """A random architecture, uniform over each gene's choices."""
        rng = seed if isinstance(seed, random.Random) else random.Random(seed)
        return Architecture(self.id, {g.name: rng.choice(g.choices) for g in self.genes})

    def validate(self, arch: Architecture) -> dict[str, int]:
        """Check ``arch`` belongs to this space; return every gene's channel count."""
        arch.check_space(self.id)
        known = {g.name: g for g in self.genes}
        unknown = sorted(set(arch.channels) - set(known))
        if unknown:
            raise InvalidArchitectureError(
                f"{arch.where} names genes {unknown[:3]} that space {self.id} lacks: use this space's gene names"
            )
        channels = {}
        for g in self.genes:
            c = arch.channels.get(g.name, g.width)
            if c not in g.choices:
                raise InvalidArchitectureError(
                    f"{arch.where}: gene {g.name!r} has {c} channels; allowed: {g.choices[0]}..{g.width} "
                    f"in steps of {g.step} (and {g.width}): pick one of the gene's choices"
                )
            channels[g.name] = c
        return channels

    def decode(self, params: Mapping[str, Any]) -> Architecture:
        """Architecture from Optuna trial params or NNI parameters (values snapped to choices).

        Raises:
            InvalidArchitectureError: a value outside a gene's range, or an unknown gene.
        """
        known = {g.name: g for g in self.genes}
        channels = {}
        for name, value in params.items():
            if name not in known:
                continue  # other hyper-parameters of the user's trial
            g = known[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidArchitectureError(f"gene {name!r}: value {value!r} is not a number")
            if not g.low - g.step / 2 <= value <= g.high + g.step / 2:
                raise InvalidArchitectureError(
                    f"gene {name!r}: value {value} is outside [{g.low}, {g.high}]: the search space is not this space's"
                )
            channels[name] = g.snap(value)
        return Architecture(self.id, {g.name: channels.get(g.name, g.width) for g in self.genes})

    # ------------------------------------------------------------------ costs
    def layer_channels(self, arch: Architecture | Mapping[str, int]) -> dict[str, tuple[int, int]]:
        """``{layer: (in, out)}`` channels of every layer of the table under ``arch``."""
        channels = self.validate(arch) if isinstance(arch, Architecture) else dict(arch)
        delta: dict[tuple[str, str], float] = {}
        for g in self.genes:
            c = channels.get(g.name, g.width)
            if c == g.width:
                continue
            for layer, dim, n in g.members:
                delta[(layer, dim)] = delta.get((layer, dim), 0) + n - n * c // g.width
        shapes = {}
        for name, info in self.layers.items():
            out = info.out_ch - int(delta.get((name, "out"), 0))
            if info.depthwise or info.kind in ("norm", "param"):
                inn = out
            else:
                inn = info.in_ch - int(delta.get((name, "in"), 0))
            shapes[name] = (inn, out)
        return shapes

    def count(self, arch: Architecture | Mapping[str, int]) -> dict[str, int]:
        """Parameters and FLOPs (multiply-accumulates of conv and linear layers) per sample."""
        params = self.fixed_params
        macs = 0
        for name, (inn, out) in self.layer_channels(arch).items():
            info = self.layers[name]
            params += layer_params(info, inn, out)
            macs += layer_macs(info, inn, out)
        return {"params": params, "flops": macs}

    # ------------------------------------------------------------------ AutoML surfaces
    def nni_search_space(self) -> dict[str, Any]:
        """NNI search space: ``quniform`` with ``q = step`` so TPE sees widths as ordered."""
        return {
            g.name: {"_type": "quniform", "_value": [g.low, g.high, g.step]} for g in self.searchable_genes
        }

    def optuna_distributions(self) -> dict[str, Any]:
        """Optuna distributions: one ``IntDistribution`` with ``step`` per searchable gene."""
        from optuna.distributions import IntDistribution

        return {g.name: IntDistribution(g.low, g.high, step=g.step) for g in self.searchable_genes}

    def suggest(self, trial: Any) -> Architecture:
        """Suggest an architecture from an Optuna trial (one ``suggest_int`` per gene)."""
        params = {g.name: trial.suggest_int(g.name, g.low, g.high, step=g.step) for g in self.searchable_genes}
        return self.decode(params)

    # ------------------------------------------------------------------ persistence
    def to_json(self) -> dict[str, Any]:
        return {
            "format": SPACE_FORMAT,
            "version": SPACE_VERSION,
            "id": self.id,
            "model": self.model,
            "input_shape": list(self.input_shape),
            "round_to": self.round_to,
            "min_ratio": self.min_ratio,
            "fixed_params": self.fixed_params,
            "genes": [g.to_json() for g in self.genes],
            "layers": {k: v.to_json() for k, v in self.layers.items()},
            "nni_search_space": self.nni_search_space(),
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        return write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "ChannelSpace":
        """Load and validate a space file (one-line :class:`InvalidFileError` if it is not one)."""
        obj = read_json(path, what="space file")
        return cls.from_json(obj, source=str(path))

    @classmethod
    def from_json(cls, obj: Any, *, source: str = "<space>") -> "ChannelSpace":
        what = "space file"
        require_header(obj, source, what, fmt=SPACE_FORMAT, version=SPACE_VERSION)
        try:
            genes = tuple(Gene.from_json(g) for g in obj["genes"])
            layers = {str(k): LayerInfo(**v) for k, v in obj["layers"].items()}
            space = cls(
                id=str(obj["id"]),
                model={"spec": obj["model"].get("spec"), "num_classes": int(obj["model"]["num_classes"]),
                       "kwargs": dict(obj["model"].get("kwargs") or {})},
                input_shape=tuple(int(s) for s in obj["input_shape"]),
                round_to=int(obj["round_to"]),
                min_ratio=float(obj["min_ratio"]),
                genes=genes,
                layers=layers,
                fixed_params=int(obj.get("fixed_params", 0)),
            )
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise InvalidFileError(
                f"space file {source} is invalid ({describe_error(exc)}): regenerate it with 'nas-prune space'"
            ) from None
        for g in space.genes:
            require(g.width > 0 and len(g.choices) > 0 and list(g.choices) == sorted(set(g.choices))
                    and g.choices[-1] == g.width and g.choices[0] > 0 and g.step > 0, source, what,
                    f"gene {g.name!r} has invalid choices")
            for layer, dim, n in g.members:
                require(layer in space.layers and dim in ("in", "out") and n > 0, source, what,
                        f"gene {g.name!r} names unknown layer {layer!r}")
        require(len({g.name for g in space.genes}) == len(space.genes), source, what, "duplicate gene names")
        require(len(space.input_shape) >= 1 and all(s > 0 for s in space.input_shape), source, what, "bad input_shape")
        return space

    def describe(self) -> Iterable[str]:
        yield f"space {self.id}: {len(self.genes)} genes ({len(self.searchable_genes)} searchable)"
        for g in self.genes:
            tag = f"fixed: {g.fixed}" if g.fixed else f"{len(g.choices)} choices {g.low}..{g.width} step {g.step}"
            yield f"  {g.name:40s} width {g.width:5d}  {tag}"
