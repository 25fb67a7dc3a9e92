"""PruningNet: one network that generates the weights of every candidate of a channel space.

MetaPruning (Liu et al., ICCV 2019, arXiv 1903.10258): a meta network generates the weights of any
pruned network from its encoding (one width ratio per gene), so a candidate is scored without
training it. Unlike the official code, nothing here is written per model: the base model of a
:class:`~nas_prune.space.ChannelSpace` runs its own ``forward``, and every conv, linear, norm and
loose parameter is bound, for the duration of a call, to a tensor cropped to the candidate's kept
channels (:class:`~nas_prune.pruningnet._channels.ChannelIndex`). A candidate's forward therefore
costs what the pruned network costs and equals the forward of :meth:`PruningNet.export`.

What a PruningNet does with a layer depends on its kind, through one table
(:data:`~nas_prune.pruningnet._layers.HANDLERS`, in its own module): how the layer's tensors are
taken from the base model when the PruningNet is built, and how they are generated or cropped for a
candidate. Every tensor a candidate needs (encodings, kept-channel indices, BatchNorm statistics)
lives on the PruningNet's device: move it with ``pnet.to(device)`` and feed inputs from there.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import torch
from torch import nn

from nas_prune.data import Preprocess
from nas_prune.errors import InvalidFileError, NasPruneError, SpaceMismatchError
from nas_prune.export import load_checkpoint, save_state_dict
from nas_prune.pruningnet._channels import ChannelIndex, check_orders
from nas_prune.pruningnet._generators import get_generator
from nas_prune.pruningnet._layers import HANDLERS, Bound, LayerKind, flat_key
from nas_prune.space import Architecture, ChannelSpace, materialize
from nas_prune.training import model_device

__all__ = ["BNStats", "PNET_FORMAT", "PNET_VERSION", "PruningNet"]

PNET_FORMAT = "nas-prune/pruningnet"
PNET_VERSION = 1

BNStats = dict[str, tuple[torch.Tensor, torch.Tensor]]
_BN = nn.modules.batchnorm._BatchNorm


class PruningNet(nn.Module):
    """Weight-sharing evaluator of a channel space (MetaPruning, arXiv 1903.10258).

    Args:
        space: The channel space; the PruningNet is built from its base model and genes.
        generator: A name in :data:`~nas_prune.pruningnet.GENERATORS`: ``"lowrank"`` (default, ~1
            parameter per weight), ``"mlp"`` (the official design, ``hidden + 1`` parameters per
            weight) or one added with :func:`~nas_prune.pruningnet.register_generator`.
        hidden: Width of every generator's hidden layer.
        rank: Rank of the low-rank modulation (``"lowrank"`` only).
        importance: ``{gene: [channel indices, most important first]}`` (e.g. the gates' order);
            a candidate keeps the leading channels of this order (natural order when absent).
        per_choice_bn: Keep BatchNorm running statistics per choice of the gene that sets a BN's
            channels, updated while training (the official code's per-choice BN). Scoring can
            then skip recalibration (``PruningNetEvaluator(..., recal_batches=0)``). BNs whose
            channels come from several genes (a concatenation) use batch statistics instead.
        init_state: A state dict of the space's model (e.g. the trained teacher's) whose weights
            become the generators' shared weights and the shared biases and norm parameters, so
            every candidate starts as the correspondingly pruned teacher (Once-for-All, Cai et al.,
            ICLR 2020, arXiv 1908.09791, trains its supernet from the trained full network).
    """

    def __init__(
        self,
        space: ChannelSpace,
        *,
        generator: str = "lowrank",
        hidden: int = 32,
        rank: int = 4,
        importance: Mapping[str, Sequence[int]] | None = None,
        per_choice_bn: bool = False,
        init_state: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        get_generator(generator)  # an unknown name fails before the model is traced
        self.space = space
        self.config: dict[str, Any] = {"generator": generator, "hidden": int(hidden), "rank": int(rank),
                       "per_choice_bn": bool(per_choice_bn)}
        self.per_choice_bn = bool(per_choice_bn)
        #: the input preprocessing of the data it was trained on (scoring must use the same); set by training
        self.preprocess: Preprocess | None = None
        self.choice_bn = nn.Module()  # per-choice running statistics, as buffers
        self._choice_gene: dict[str, int] = {}
        self.orders = check_orders(space, importance)
        base = space.build_model()
        if init_state is not None:
            try:
                base.load_state_dict(dict(init_state))
            except RuntimeError as exc:
                raise SpaceMismatchError(f"initial weights do not fit space {space.id} "
                                         f"({str(exc).splitlines()[0][:160]}): pass the teacher of this space") from None
        self.index = ChannelIndex.build(space, base)
        self._gene_pos = {g.name: i for i, g in enumerate(space.genes)}
        modules = dict(base.named_modules())
        self.generators = nn.ModuleDict()
        self.shared = nn.ParameterDict()
        self.gene_inputs = nn.Module()  # per generated layer: the genes its encoding reads (buffers)
        self._layers: list[tuple[str, LayerKind]] = []  # (name, kind) in table order
        for name, info in space.layers.items():
            kind = LayerKind.of(info.kind)
            if kind is not None and HANDLERS[kind].adopt(self, name, info, modules, base):
                self._layers.append((name, kind))
        self.base = base
        self._modules_by_name = dict(base.named_modules())

    # ------------------------------------------------------------------ identity
    @property
    def space_id(self) -> str:
        return self.space.id

    @property
    def device(self) -> torch.device:
        """Where the PruningNet's parameters are (``pnet.to(device)`` moves it)."""
        return model_device(self)

    def _gene_inputs(self, name: str) -> torch.Tensor:
        return getattr(self.gene_inputs, flat_key(name))

    def check_space(self, space: ChannelSpace) -> None:
        """Raise :class:`SpaceMismatchError` unless ``space`` is the space this PruningNet was built for."""
        if space.id != self.space.id:
            raise SpaceMismatchError(
                f"PruningNet is for space {self.space.id!r}, not {space.id!r}: "
                "train a PruningNet for this space (nas-prune pruningnet train) or use its space file"
            )

    # ------------------------------------------------------------------ candidates
    def _channels(self, arch: Architecture | Mapping[str, int]) -> dict[str, int]:
        if not isinstance(arch, Architecture):
            arch = Architecture(self.space.id, dict(arch))
        return self.space.validate(arch)

    def encoding(self, arch: Architecture | Mapping[str, int]) -> torch.Tensor:
        """Width ratio of every gene (in ``space.genes`` order) followed by a constant 1."""
        channels = self._channels(arch)
        ratios = [channels[g.name] / g.width for g in self.space.genes]
        return torch.tensor(ratios + [1.0], device=self.device)

    def full_weights(self, arch: Architecture | Mapping[str, int]) -> dict[str, torch.Tensor]:
        """Generated full-size weight of every conv and linear layer for ``arch`` (before cropping)."""
        enc = self.encoding(arch)
        return {name: self.generators[flat_key(name)](enc[self._gene_inputs(name)])
                for name, kind in self._layers if HANDLERS[kind].generated}

    def generate(self, arch: Architecture | Mapping[str, int]) -> Bound:
        """Generate and crop every tensor of ``arch`` (differentiable; call under ``no_grad`` to score)."""
        channels = self._channels(arch)
        bound = Bound(channels, self.index.kept(channels, self.orders, device=self.device))
        enc = self.encoding(channels)
        for name, kind in self._layers:
            HANDLERS[kind].crop(self, name, bound, enc)
        return bound

    @contextlib.contextmanager
    def bind(self, bound: Bound, bn_stats: BNStats | None = None) -> Iterator[None]:
        """Bind ``bound``'s tensors (and BN statistics, if any) to the base model for a block."""
        saved: list[tuple[nn.Module, str, Any]] = []
        try:
            for (name, attr), value in bound.attrs.items():
                module = self._modules_by_name[name]
                saved.append((module, attr, getattr(module, attr, None)))
                if isinstance(value, nn.Parameter):  # a view, so the module does not adopt it
                    value = value.view_as(value)
                setattr(module, attr, value)
            for name in bound.bn_sizes:
                module = self._modules_by_name[name]
                mean, var = bn_stats[name] if bn_stats and name in bn_stats else (None, None)
                saved.append((module, "running_mean", None))
                saved.append((module, "running_var", None))
                module.running_mean, module.running_var = mean, var
            yield
        finally:
            for module, attr, value in reversed(saved):
                setattr(module, attr, value)

    def choice_stats(self, bound: Bound) -> BNStats:
        """Views of the per-choice BN statistics of a candidate (empty without ``per_choice_bn``).

        Views, so that a train-mode forward bound to them updates the stored statistics in place.
        The kept channels of a choice are always the same, stored as a prefix of the choice's row.
        """
        stats: BNStats = {}
        for name, gi in self._choice_gene.items():
            gene = self.space.genes[gi]
            row = gene.choices.index(bound.channels[gene.name])
            size = bound.bn_sizes[name]
            stats[name] = (getattr(self.choice_bn, flat_key(name) + "__mean")[row, :size],
                           getattr(self.choice_bn, flat_key(name) + "__var")[row, :size])
        return stats

    def forward(self, x: torch.Tensor, arch: Architecture | Mapping[str, int],
                bn_stats: BNStats | None = None) -> torch.Tensor:
        """Logits of candidate ``arch`` on ``x``.

        BN uses ``bn_stats`` when given, else the per-choice statistics (``per_choice_bn``; train
        mode updates them), else batch statistics.
        """
        bound = self.generate(arch)
        if bn_stats is None and self.per_choice_bn:
            bn_stats = self.choice_stats(bound)
        with self.bind(bound, bn_stats):
            return self.base(x)

    @torch.no_grad()
    def recalibrate(self, bound: Bound, batches: Iterable[torch.Tensor]) -> BNStats:
        """BatchNorm statistics of a candidate: reset, run ``batches`` in train mode, average.

        MetaPruning scores a candidate only after this (the shared statistics of a PruningNet fit
        no single candidate). The statistics are the cumulative average over all batches.
        """
        dev = self.device
        stats: BNStats = {n: (torch.zeros(s, device=dev), torch.ones(s, device=dev)) for n, s in bound.bn_sizes.items()}
        modules = [self._modules_by_name[n] for n in bound.bn_sizes]
        momenta = [m.momentum for m in modules]
        was_training = self.base.training
        try:
            for m in modules:
                m.momentum = None
                if m.num_batches_tracked is not None:
                    m.num_batches_tracked.zero_()
            self.base.train()
            with self.bind(bound, stats):
                for x in batches:
                    self.base(x)
        finally:
            for m, mom in zip(modules, momenta):
                m.momentum = mom
            self.base.train(was_training)
        return stats

    # ------------------------------------------------------------------ export
    @torch.no_grad()
    def export(self, arch: Architecture | Mapping[str, int], bn_stats: BNStats | None = None) -> nn.Module:
        """The materialized model of ``arch`` carrying the generated weights (eval mode, on the CPU).

        ``bn_stats`` (from :meth:`recalibrate`) become the BatchNorm running statistics; without
        them they are reset (mean 0, variance 1). The kept channels follow the importance order.
        The model is built on the CPU whatever the PruningNet's device (move it where it trains).
        """
        channels = self._channels(arch)
        model = self.space.build_model()
        state = model.state_dict()
        state.update({k: v for k, v in self.base.state_dict().items() if k in state})
        for name, w in self.full_weights(channels).items():
            state[f"{name}.weight"] = w
        for k, p in self.shared.items():
            state[k.replace("__", ".")] = p.detach()
        kept = self.index.kept(channels, self.orders)
        for name, (mean, var) in (bn_stats or {}).items():
            mean, var = mean.detach().cpu(), var.detach().cpu()
            ko = kept.get((name, "out"))
            full_mean, full_var = torch.zeros_like(state[f"{name}.running_mean"]), torch.ones_like(state[f"{name}.running_var"])
            if ko is None:
                full_mean, full_var = mean, var
            else:
                full_mean[ko], full_var[ko] = mean, var
            state[f"{name}.running_mean"], state[f"{name}.running_var"] = full_mean, full_var
        for name, module in model.named_modules():
            if isinstance(module, _BN) and module.track_running_stats and name not in (bn_stats or {}):
                state[f"{name}.running_mean"] = torch.zeros_like(state[f"{name}.running_mean"])
                state[f"{name}.running_var"] = torch.ones_like(state[f"{name}.running_var"])
        model.load_state_dict(state)
        orders = {g.name: self.orders.get(g.name, list(range(g.width))) for g in self.space.genes}
        arch = Architecture(self.space.id, channels)
        return materialize(model, arch, orders, space=self.space).eval()

    # ------------------------------------------------------------------ persistence
    def checkpoint_fields(self) -> dict[str, Any]:
        """Metadata that lets :meth:`load` rebuild this PruningNet from its checkpoint alone."""
        return {
            "format": PNET_FORMAT,
            "version": PNET_VERSION,
            "space": self.space.id,
            "space_json": self.space.to_json(),
            "config": dict(self.config),
            "importance": dict(self.orders),
            "preprocess": self.preprocess.to_json() if self.preprocess is not None else None,
        }

    def save(self, path: str | os.PathLike[str], **extra: Any) -> Path:
        """Write a weights-only checkpoint (atomic)."""
        return save_state_dict(self.state_dict(), path, **self.checkpoint_fields(), **extra)

    @classmethod
    def from_checkpoint(cls, ckpt: Mapping[str, Any], path: str | os.PathLike[str],
                        space: ChannelSpace | None = None) -> "PruningNet":
        """Rebuild from a loaded checkpoint dict (see :meth:`load`)."""
        what = "PruningNet checkpoint"
        if ckpt.get("format") != PNET_FORMAT or not isinstance(ckpt.get("state_dict"), dict):
            raise InvalidFileError(f"{what} {path} is not a PruningNet: write one with 'nas-prune pruningnet train'")
        if ckpt.get("version") != PNET_VERSION:
            raise InvalidFileError(f"{what} {path} has version {ckpt.get('version')!r}; this nas-prune reads {PNET_VERSION}: retrain it")
        if space is not None and ckpt.get("space") != space.id:
            raise SpaceMismatchError(
                f"{what} {path} is for space {ckpt.get('space')!r}, not {space.id!r}: "
                "use the PruningNet trained for this space or pass its space file"
            )
        if space is None:
            space = ChannelSpace.from_json(ckpt.get("space_json"), source=f"{path} (embedded space)")
        config = ckpt.get("config")
        if not isinstance(config, dict) or not {"generator", "hidden", "rank"} <= set(config):
            raise InvalidFileError(f"{what} {path} has no valid config: retrain it")
        pnet = cls(space, generator=str(config["generator"]), hidden=int(config["hidden"]),
                   rank=int(config["rank"]), importance=ckpt.get("importance") or None,
                   per_choice_bn=bool(config.get("per_choice_bn", False)))
        try:
            pnet.load_state_dict(ckpt["state_dict"])
        except RuntimeError as exc:
            raise InvalidFileError(f"{what} {path} does not fit its space ({str(exc).splitlines()[0][:160]}): retrain it") from None
        if ckpt.get("preprocess") is not None:
            try:
                pnet.preprocess = Preprocess.from_json(ckpt["preprocess"])
            except NasPruneError as exc:
                raise InvalidFileError(f"{what} {path}: {exc}") from None
        return pnet

    @classmethod
    def load(cls, path: str | os.PathLike[str], space: ChannelSpace | None = None) -> "PruningNet":
        """Load a PruningNet (weights-only); ``space`` must match the one it was trained for.

        Raises:
            InvalidFileError: not a PruningNet checkpoint, or corrupt.
            SpaceMismatchError: ``space`` is not the PruningNet's space.
        """
        ckpt = load_checkpoint(path, what="PruningNet checkpoint")
        return cls.from_checkpoint(ckpt, path, space)
