"""Channel gates attached to a model with forward hooks (no change to the model's code).

Pruning from Scratch (Wang et al., AAAI 2020, arXiv 1909.12579) multiplies every channel by a
scalar gate after its batch norm and before its activation. nas-prune has one gate vector per
searchable gene: all member convs of the gene (a residual stream has several) share it, so a
gate learned at zero removes the same channel everywhere the gene reaches.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nas_prune.space import ChannelSpace
from nas_prune.training import model_device

__all__ = ["GateHooks", "gate_targets"]

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm, nn.InstanceNorm2d, nn.LayerNorm)


def gate_targets(model: nn.Module, space: ChannelSpace) -> dict[str, list[str]]:
    """Modules whose output each searchable gene's gate multiplies.

    For every member conv/linear whose output channels are the gene: the norm layer that directly
    consumes that output (found by tracing one forward pass on the model's device), or the layer
    itself when no norm follows it.

    Returns:
        ``{gene: [module name, ...]}``; genes without a gateable member are left out.
    """
    modules = dict(model.named_modules())
    produced: dict[int, str] = {}
    follows: dict[str, str] = {}
    hooks = []

    def out_hook(name: str) -> Any:
        def hook(mod: nn.Module, inputs: Any, out: Any) -> None:
            if isinstance(out, torch.Tensor):
                produced[id(out)] = name
        return hook

    def norm_pre_hook(name: str) -> Any:
        def hook(mod: nn.Module, inputs: Any) -> None:
            if inputs and isinstance(inputs[0], torch.Tensor) and id(inputs[0]) in produced:
                follows.setdefault(produced[id(inputs[0])], name)
        return hook

    for name, m in modules.items():
        if isinstance(m, (*_CONV, nn.Linear)):
            hooks.append(m.register_forward_hook(out_hook(name)))
        elif isinstance(m, _NORM):
            hooks.append(m.register_forward_pre_hook(norm_pre_hook(name)))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(space.example_input(1).to(model_device(model)))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    targets: dict[str, list[str]] = {}
    for gene in space.searchable_genes:
        names: list[str] = []
        for layer, dim, n in gene.members:
            m = modules.get(layer)
            if dim != "out" or n != gene.width or not isinstance(m, (*_CONV, nn.Linear)):
                continue
            width = m.out_channels if isinstance(m, _CONV) else m.out_features
            if width != gene.width:
                continue  # a slice of a wider layer (concatenation): not gateable as a whole
            target = follows.get(layer, layer)
            if target not in names:
                names.append(target)
        if names:
            targets[gene.name] = names
    return targets


class GateHooks:
    """One gate vector per searchable gene, multiplied into the outputs of :func:`gate_targets`.

    Use as a context manager: hooks are removed on exit. ``gates[gene]`` is an ``nn.Parameter`` of
    the gene's width, initialised to 1 (the unpruned model), on the model's device.

    Args:
        model: The model to gate (its weights are not touched).
        space: The model's channel space.
        initial: Optional starting values per gene (e.g. from a checkpoint).
    """

    def __init__(self, model: nn.Module, space: ChannelSpace, *, initial: dict[str, torch.Tensor] | None = None) -> None:
        self.model = model
        self.targets = gate_targets(model, space)
        widths = {g.name: g.width for g in space.searchable_genes}
        device = model_device(model)
        self.gates: dict[str, nn.Parameter] = {}
        for gene in self.targets:
            start = initial[gene].clone().float() if initial and gene in initial else torch.ones(widths[gene])
            self.gates[gene] = nn.Parameter(start.to(device))
        self._handles: list[Any] = []

    def parameters(self) -> list[nn.Parameter]:
        return list(self.gates.values())

    def __enter__(self) -> "GateHooks":
        modules = dict(self.model.named_modules())
        for gene, names in self.targets.items():
            for name in names:
                self._handles.append(modules[name].register_forward_hook(self._hook(self.gates[gene])))
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    @staticmethod
    def _hook(gate: nn.Parameter) -> Any:
        def hook(mod: nn.Module, inputs: Any, out: torch.Tensor) -> torch.Tensor:
            if isinstance(mod, nn.Linear) or isinstance(mod, nn.LayerNorm):
                return out * gate
            return out * gate.view(1, -1, *([1] * (out.dim() - 2)))
        return hook

    @torch.no_grad()
    def clamp_(self) -> None:
        """Project every gate onto [0, 1] (exact zeros appear, as in the paper)."""
        for g in self.gates.values():
            g.clamp_(0.0, 1.0)

    @torch.no_grad()
    def keep_top_(self, k: int) -> None:
        """Zero every gate but the ``k`` largest (over all genes), keeping each gene's largest.

        The projection onto "at most ``k`` non-zero gates" (iterative hard thresholding), so that
        a gene never loses all its channels.
        """
        flat = self.flat()
        if k >= flat.numel():
            return
        threshold = torch.topk(flat, max(k, 1)).values[-1]
        tops = torch.stack([g.max() for g in self.gates.values()])
        guarded = int((tops < threshold).sum())  # kept beyond the top k (one device sync, not one per gene)
        if guarded:
            threshold = torch.topk(flat, max(k - guarded, 1)).values[-1]
        for g, top in zip(self.gates.values(), tops):
            g.masked_fill_((g < threshold) & (g < top), 0.0)

    def flat(self) -> torch.Tensor:
        return torch.cat([g.view(-1) for g in self.gates.values()])

    def values(self) -> dict[str, list[float]]:
        """Every gene's gates as floats (copied from the device once per gene)."""
        return {k: g.detach().cpu().tolist() for k, g in self.gates.items()}
