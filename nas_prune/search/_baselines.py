"""The picks a user would make without a search, aimed at the same cost: uniform width and global magnitude pruning.

nas-prune's pick must never lose to them (issue 30), so the run computes them itself and lets them
compete with the search's finalists (``nas-prune run --select finetune``); the methods benchmark
(``benchmarks/compare_methods.py``) uses the same functions for its baseline rows.

* **Uniform width**: the widest ``space.uniform(r)`` whose cost is at most the target.
* **Global magnitude pruning** (Torch-Pruning's ``MetaPruner``, Fang et al., "DepGraph", CVPR 2023):
  channels of every layer ranked together by an importance of the trained weights (``l1``:
  ``MagnitudeImportance(p=1)``, Li et al., ICLR 2017; ``group_norm``: ``GroupMagnitudeImportance``, the
  importance of a whole coupled group, Torch-Pruning's default), its ``pruning_ratio`` bisected until
  the cost meets the target. The pruned channel counts are read back per gene and snapped *down* to
  the space's grid, so the target still holds after snapping.

A baseline is a registered function ``(space, model, cost, target) -> Architecture``
(:data:`BASELINES`, :func:`register_baseline`).
"""

from __future__ import annotations

import copy
import warnings
from typing import Callable, Sequence

import torch
from torch import nn

from nas_prune.space import Architecture, ChannelSpace, scaled_to

__all__ = ["BASELINES", "Baseline", "MagnitudePruner", "baseline_names", "get_baseline", "read_back",
           "register_baseline", "uniform_under"]

Cost = Callable[[Architecture], float]
#: ``(space, trained model, cost, target) -> the baseline's architecture at cost <= target``.
Baseline = Callable[[ChannelSpace, nn.Module, Cost, float], Architecture]
BASELINES: dict[str, Baseline] = {}

IMPORTANCES = ("l1", "group_norm", "taylor")


def register_baseline(name: str) -> Callable[[Baseline], Baseline]:
    """Register a baseline pick under ``name`` (``--select finetune`` lets every registered one compete)."""

    def deco(fn: Baseline) -> Baseline:
        BASELINES[name] = fn
        return fn

    return deco


def baseline_names() -> list[str]:
    """The registered baselines, in registration order."""
    return list(BASELINES)


def get_baseline(name: str) -> Baseline:
    """The baseline called ``name``.

    Raises:
        KeyError: none has that name (the message lists them).
    """
    if name not in BASELINES:
        raise KeyError(f"no baseline {name!r}: the baselines are {', '.join(BASELINES)}")
    return BASELINES[name]


def uniform_under(space: ChannelSpace, cost: Cost, target: float) -> Architecture:
    """The widest uniform-width architecture whose ``cost`` is at most ``target`` (the smallest if none is)."""
    return scaled_to(space, cost, target, {}, nearest=False)


class MagnitudePruner:
    """Torch-Pruning's magnitude pruning of a trained model, read back into ``space``'s grid.

    Args:
        space: The channel space of ``model``.
        model: The trained model; left untouched.
        global_pruning: Rank channels across layers (True) or prune every layer by the same ratio.
        importance: ``l1`` (per-channel L1 norm), ``group_norm`` (the coupled group's norm) or
            ``taylor`` (first-order Taylor expansion of the loss, Molchanov et al., CVPR 2019:
            Torch-Pruning's ``GroupTaylorImportance``, from the gradients of ``batches``).
        batches: ``(images, labels)`` batches whose cross-entropy gradients ``taylor`` reads
            (normalised as the model expects; a few suffice).
    """

    def __init__(self, space: ChannelSpace, model: nn.Module, *, global_pruning: bool = True,
                 importance: str = "l1", batches: Sequence[tuple[torch.Tensor, torch.Tensor]] = ()) -> None:
        if importance not in IMPORTANCES:
            raise ValueError(f"importance {importance!r}: use one of {', '.join(IMPORTANCES)}")
        if importance == "taylor" and not batches:
            raise ValueError("importance 'taylor' reads gradients: pass a few (images, labels) batches")
        self.batches = list(batches)
        self.space, self.model = space, model
        self.global_pruning, self.importance = global_pruning, importance
        self._cache: dict[float, Architecture] = {}

    def architecture(self, ratio: float) -> Architecture:
        """The architecture Torch-Pruning leaves at ``pruning_ratio=ratio`` (memoised)."""
        key = round(ratio, 4)
        if key not in self._cache:
            self._cache[key] = self._prune(key)
        return self._cache[key]

    def _importance(self) -> object:
        import torch_pruning as tp

        if self.importance == "group_norm":
            return tp.importance.GroupMagnitudeImportance(p=2)
        if self.importance == "taylor":
            return tp.importance.GroupTaylorImportance()
        return tp.importance.MagnitudeImportance(p=1)

    def _prune(self, ratio: float) -> Architecture:
        import torch_pruning as tp

        space = self.space
        model = copy.deepcopy(self.model).cpu().eval()
        for p in model.parameters():
            p.requires_grad_(True)  # Torch-Pruning traces with autograd
        modules = dict(model.named_modules())
        ignored = [modules[g.name] for g in space.genes if not g.searchable and g.name in modules]
        ignored += [m for m in model.modules() if isinstance(m, nn.Linear)]  # the classifier keeps its classes
        if ratio > 0:
            with space.trace_context(), warnings.catch_warnings(), torch.enable_grad():
                warnings.simplefilter("ignore")
                for x, y in self.batches:  # Taylor importance: gradients of the loss on the private copy
                    nn.functional.cross_entropy(model(x), y).backward()
                pruner = tp.pruner.MetaPruner(model, space.example_input(), importance=self._importance(),
                                              global_pruning=self.global_pruning, pruning_ratio=ratio,
                                              max_pruning_ratio=0.95, ignored_layers=ignored)
                pruner.step()
        return read_back(space, model)

    def aim(self, cost: Cost, target: float, *, steps: int = 12, max_ratio: float = 0.95) -> tuple[Architecture, float]:
        """The smallest ``pruning_ratio`` whose architecture costs at most ``target``: ``(arch, ratio)``.

        Cost falls as the ratio grows; when even ``max_ratio`` misses, that architecture is returned.
        """
        if cost(self.architecture(0.0)) <= target:
            return self.architecture(0.0), 0.0
        lo, hi = 0.0, max_ratio
        if cost(self.architecture(hi)) > target:
            return self.architecture(hi), hi
        for _ in range(steps):  # invariant: lo misses, hi meets
            mid = (lo + hi) / 2
            if cost(self.architecture(mid)) <= target:
                hi = mid
            else:
                lo = mid
        return self.architecture(hi), hi


def read_back(space: ChannelSpace, model: nn.Module) -> Architecture:
    """The channel counts a pruning tool left in ``model`` (pruned in place), per gene, snapped down to the space's choices."""
    modules = dict(model.named_modules())
    channels = {}
    for g in space.genes:
        m = modules.get(g.name)
        if not g.searchable or m is None:
            channels[g.name] = g.width
            continue
        n = int(getattr(m, "out_channels", getattr(m, "out_features", getattr(m, "num_features", g.width))))
        below = [c for c in g.choices if c <= n]
        channels[g.name] = below[-1] if below else g.low
    arch = Architecture(space.id, channels)
    space.validate(arch)
    return arch


@register_baseline("uniform")
def _uniform(space: ChannelSpace, model: nn.Module, cost: Cost, target: float) -> Architecture:
    return uniform_under(space, cost, target)


@register_baseline("magnitude")
def _magnitude(space: ChannelSpace, model: nn.Module, cost: Cost, target: float) -> Architecture:
    return MagnitudePruner(space, model, global_pruning=True, importance="l1").aim(cost, target)[0]
