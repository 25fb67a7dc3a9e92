"""Physical pruning: a point of the space back into a real, smaller ``nn.Module``."""

from __future__ import annotations

import copy
import dataclasses
import math
import warnings
from typing import Mapping, Sequence

import torch
import torch_pruning as tp
from torch import nn

from nas_prune.errors import InvalidArchitectureError
from nas_prune.space._arch import Architecture
from nas_prune.space._gene import Gene
from nas_prune.space._graph import build_dependency_graph
from nas_prune.space._space import ChannelSpace

__all__ = ["materialize", "narrow", "l1_importance", "channel_groups", "pruned_indices"]

Importance = Mapping[str, Sequence[int]]


def channel_groups(space: ChannelSpace, gene: Gene) -> int:
    """Groups of the grouped convs a gene feeds: every group must keep the same channel count."""
    cg = 1
    for layer, _dim, _n in gene.members:
        info = space.layers[layer]
        if info.kind == "conv" and info.groups > 1 and not info.depthwise:
            cg = math.lcm(cg, info.groups)
    return cg


def _root_group(DG: tp.DependencyGraph, module: nn.Module, idxs: Sequence[int]) -> tp.dependency.Group:
    pruner = DG.get_pruner_of_module(module)
    return DG.get_pruning_group(module, pruner.prune_out_channels, list(idxs))


def l1_importance(model: nn.Module, space: ChannelSpace) -> dict[str, list[int]]:
    """Channel order per gene by the L1 norm of every weight the channel touches (most important first).

    Uses Torch-Pruning's ``GroupMagnitudeImportance(p=1)`` over the whole dependency group.
    """
    DG = build_dependency_graph(model, space.example_input(), trace_context=space.trace_context)
    modules = dict(model.named_modules())
    imp = tp.importance.GroupMagnitudeImportance(p=1)
    orders = {}
    for g in space.searchable_genes:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scores = imp(_root_group(DG, modules[g.name], range(g.width)))
        if scores is None:
            scores = torch.zeros(g.width)
        orders[g.name] = torch.argsort(scores.detach(), descending=True, stable=True).tolist()
    return orders


def pruned_indices(gene: Gene, keep: int, order: Sequence[int] | None, scores: torch.Tensor | None, cg: int) -> list[int]:
    """The channels of ``gene`` that keeping ``keep`` of them removes, by importance.

    Args:
        gene: The gene.
        keep: Channels kept.
        order: Channel indices, most important first (wins over ``scores``).
        scores: One importance per channel (higher is kept first).
        cg: Groups of a grouped convolution on the gene (> 1: the same local channels are kept in every group).
    """
    if order is not None:
        if sorted(order) != list(range(gene.width)):
            raise InvalidArchitectureError(
                f"importance order for gene {gene.name!r} is not a permutation of its {gene.width} channels: "
                "regenerate the gates file for this space"
            )
        scores = torch.empty(gene.width)
        scores[torch.tensor(list(order))] = torch.arange(gene.width, 0, -1, dtype=torch.float)
    assert scores is not None
    if cg > 1:  # keep the same local channels in every group of the grouped conv
        local = scores.view(cg, -1).mean(0)
        keep_local = set(torch.argsort(local, descending=True, stable=True)[: keep // cg].tolist())
        size = gene.width // cg
        return [k * size + i for k in range(cg) for i in range(size) if i not in keep_local]
    kept = set(torch.argsort(scores, descending=True, stable=True)[:keep].tolist())
    return [i for i in range(gene.width) if i not in kept]


def materialize(
    model: nn.Module,
    arch: Architecture,
    importance: Importance | None = None,
    *,
    space: ChannelSpace,
) -> nn.Module:
    """Return a physically smaller copy of ``model`` whose layer shapes equal ``arch``.

    Args:
        model: The base model of ``space`` (left untouched).
        arch: The architecture to build.
        importance: Per gene, channel indices from most to least important (e.g. the gate order);
            genes without one use the L1 magnitude of their weights (Torch-Pruning).
        space: The space ``arch`` belongs to.

    Raises:
        InvalidArchitectureError: ``arch`` is not a point of ``space``.
    """
    channels = space.validate(arch)
    return _cut(copy.deepcopy(model).eval(), space, {g.name: g.width for g in space.genes}, channels, importance)


def narrow(model: nn.Module, current: Architecture, arch: Architecture, *, space: ChannelSpace) -> nn.Module:
    """A physically smaller copy of ``model``, already pruned to ``current``, pruned further to ``arch``.

    What :func:`materialize` does to the unpruned network, from a pruned one (e.g. a finished
    student shrunk to meet a budget): per gene, the channels with the smallest L1 magnitude over
    their whole dependency group (Torch-Pruning) go.

    Raises:
        InvalidArchitectureError: either architecture is not a point of ``space``, or ``arch`` is
            wider than ``current`` on some gene.
    """
    have, want = space.validate(current), space.validate(arch)
    wider = [g for g in space.genes if want[g.name] > have[g.name]]
    if wider:
        raise InvalidArchitectureError(f"gene {wider[0].name!r}: {want[wider[0].name]} channels is wider than the "
                                       f"model's {have[wider[0].name]}: a pruned model can only be narrowed")
    return _cut(copy.deepcopy(model).eval(), space, have, want, None)


def _cut(pruned: nn.Module, space: ChannelSpace, have: Mapping[str, int], want: Mapping[str, int],
         importance: Importance | None) -> nn.Module:
    """Prune ``pruned`` in place from ``have`` to ``want`` channels per gene (importance measured before any cut)."""
    todo = [g for g in space.genes if want[g.name] < have[g.name]]
    if not todo:
        return pruned
    DG = build_dependency_graph(pruned, space.example_input(), trace_context=space.trace_context)
    modules = dict(pruned.named_modules())
    imp = tp.importance.GroupMagnitudeImportance(p=1)
    plan = []
    for g in todo:
        now = g if have[g.name] == g.width else dataclasses.replace(g, width=have[g.name])  # as the model has it
        order = importance.get(g.name) if importance else None
        scores = None
        if order is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                scores = imp(_root_group(DG, modules[g.name], range(now.width)))
            scores = torch.zeros(now.width) if scores is None else scores.detach()
        plan.append((g, pruned_indices(now, want[g.name], order, scores, channel_groups(space, g))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for g, idxs in plan:
            _root_group(DG, modules[g.name], idxs).prune(record_history=False)
    _check_shapes(pruned, space, want)
    return pruned


def _check_shapes(model: nn.Module, space: ChannelSpace, channels: Mapping[str, int]) -> None:
    expected = space.layer_channels(channels)
    modules = dict(model.named_modules())
    for name, (inn, out) in expected.items():
        m = modules.get(name)
        if isinstance(m, nn.modules.conv._ConvNd):
            got = (m.in_channels, m.out_channels)
        elif isinstance(m, nn.Linear):
            got = (m.in_features, m.out_features)
        else:
            continue
        if got != (inn, out):
            raise RuntimeError(f"materialize produced {name} with (in, out)={got}, expected {(inn, out)}")


