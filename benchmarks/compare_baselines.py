"""The usual ways to shrink a network, aimed at a latency budget: uniform width and Torch-Pruning L1.

Private helper of ``benchmarks/compare_methods.py``. Each function returns an
:class:`~nas_prune.space.Architecture` of the benchmark's space so that every method is finished
(distilled) and measured the same way.

* Uniform width multiplier: the largest ratio ``r`` whose ``space.uniform(r)`` the latency table
  predicts under the budget.
* Torch-Pruning magnitude pruning (``tp.pruner.MetaPruner`` with ``MagnitudeImportance(p=1)``),
  ``global_pruning=True`` (channels of all layers ranked together) or ``False`` (the same ratio in
  every layer), its ``pruning_ratio`` bisected until the pruned network's FLOPs reach the budget's
  fraction of the teacher's FLOPs (what users do today) or the table's prediction meets the
  latency budget. The pruned channel counts are read back per gene and snapped *down* to the
  space's grid (never below the smallest choice), so the target still holds after snapping.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any, Callable

import torch
import torch_pruning as tp
from torch import nn

from nas_prune.space import Architecture, ChannelSpace

__all__ = ["uniform_under", "TorchPruningL1", "flops_cost", "describe"]


def uniform_under(space: ChannelSpace, predict_ms: Callable[[Architecture], float], budget_ms: float,
                  *, steps: int = 30) -> Architecture:
    """Largest uniform width ``space.uniform(r)`` predicted under ``budget_ms`` (bisection on ``r``)."""
    lo, hi = 0.0, 1.0
    if predict_ms(space.uniform(hi)) <= budget_ms:
        return space.uniform(hi)
    for _ in range(steps):  # invariant: hi infeasible
        mid = (lo + hi) / 2
        if predict_ms(space.uniform(mid)) <= budget_ms:
            lo = mid
        else:
            hi = mid
    return space.uniform(lo)


class TorchPruningL1:
    """Torch-Pruning L1 magnitude pruning of a trained model, read back into ``space``'s grid.

    Args:
        space: The channel space of ``model``.
        model: The trained (teacher) model; left untouched.
        global_pruning: Rank channels across layers (True) or prune each layer by the same ratio.
    """

    def __init__(self, *, space: ChannelSpace, model: nn.Module, global_pruning: bool) -> None:
        self.space, self.model, self.global_pruning = space, model, global_pruning
        self._cache: dict[float, Architecture] = {}

    def architecture(self, ratio: float) -> Architecture:
        """The architecture Torch-Pruning produces at ``pruning_ratio=ratio`` (memoised)."""
        key = round(ratio, 4)
        if key not in self._cache:
            self._cache[key] = self._prune(key)
        return self._cache[key]

    def _prune(self, ratio: float) -> Architecture:
        space = self.space
        model = copy.deepcopy(self.model).eval()
        for p in model.parameters():
            p.requires_grad_(True)  # Torch-Pruning traces with autograd
        modules = dict(model.named_modules())
        ignored = [modules[g.name] for g in space.genes if not g.searchable and g.name in modules]
        ignored += [m for m in model.modules() if isinstance(m, nn.Linear)]  # the classifier keeps its classes
        if ratio > 0:
            with space.trace_context(), warnings.catch_warnings(), torch.enable_grad():
                warnings.simplefilter("ignore")
                pruner = tp.pruner.MetaPruner(model, space.example_input(), importance=tp.importance.MagnitudeImportance(p=1),
                                              global_pruning=self.global_pruning, pruning_ratio=ratio,
                                              max_pruning_ratio=0.95, ignored_layers=ignored)
                pruner.step()
        channels = {}
        for g in space.genes:
            if not g.searchable:
                channels[g.name] = g.width
                continue
            m = modules[g.name]
            n = int(getattr(m, "out_channels", getattr(m, "out_features", getattr(m, "num_features", g.width))))
            below = [c for c in g.choices if c <= n]
            channels[g.name] = below[-1] if below else g.low
        arch = Architecture(space.id, channels)
        space.validate(arch)
        return arch

    def aim(self, cost: Callable[[Architecture], float], limit: float, *, steps: int = 12,
            max_ratio: float = 0.95) -> tuple[Architecture, float]:
        """Smallest ``pruning_ratio`` whose architecture costs ``<= limit``; returns ``(arch, ratio)``.

        Cost falls as the ratio grows; if even ``max_ratio`` misses, that architecture is returned
        (the benchmark then reports it infeasible rather than dropping it).
        """
        if cost(self.architecture(0.0)) <= limit:
            return self.architecture(0.0), 0.0
        lo, hi = 0.0, max_ratio
        if cost(self.architecture(hi)) > limit:
            return self.architecture(hi), hi
        for _ in range(steps):  # invariant: lo misses, hi meets
            mid = (lo + hi) / 2
            if cost(self.architecture(mid)) <= limit:
                hi = mid
            else:
                lo = mid
        return self.architecture(hi), hi


def flops_cost(space: ChannelSpace) -> Callable[[Architecture], float]:
    """FLOPs of an architecture (the space's own count, as a float)."""
    return lambda arch: float(space.count(arch)["flops"])


def describe(arch: Architecture, space: ChannelSpace) -> dict[str, Any]:
    """FLOPs and parameters of ``arch``."""
    c = space.count(arch)
    return {"flops": int(c["flops"]), "params": int(c["params"])}
