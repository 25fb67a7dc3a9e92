"""Which channels of every layer a candidate keeps, derived once from Torch-Pruning's groups.

A gene's channel ``i`` lands at different indices in different layers (a concatenation shifts it,
a flatten into a linear layer expands it to ``i * positions ... (i + 1) * positions - 1``).
Torch-Pruning's dependency graph (Fang et al., CVPR 2023) records that mapping: every item of a
pruning group carries the target indices and the root (gene) index each came from. This module
reads it once per space, so cropping a candidate afterwards is plain tensor indexing that keeps
exactly the channels :func:`nas_prune.space.materialize` keeps.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import torch
from torch import nn

from nas_prune.errors import InvalidArchitectureError
from nas_prune.space import (
    Architecture,
    ChannelSpace,
    build_dependency_graph,
    channel_groups,
    is_out_channel_fn,
    pruned_indices,
)
from nas_prune.training import to_device

__all__ = ["ChannelIndex", "KeptChannels", "check_orders"]

# (layer, "in" | "out") -> kept indices (sorted), only for dimensions that lose channels.
KeptChannels = dict[tuple[str, str], torch.Tensor]


@dataclass
class _Member:
    gene: int  # position of the gene in space.genes
    idxs: torch.Tensor  # target indices in the layer's dimension
    roots: torch.Tensor  # gene channel each target index comes from


@dataclass
class ChannelIndex:
    """Index maps from every gene's channels to every layer dimension it sets.

    Attributes:
        space: The channel space.
        members: ``(layer, "in"|"out") -> [_Member]``.
        param_dims: tensor dimension a loose parameter (``kind == "param"``) is pruned along.
    """

    space: ChannelSpace
    members: dict[tuple[str, str], list[_Member]] = field(default_factory=dict)
    param_dims: dict[str, int] = field(default_factory=dict)

    @classmethod
    def build(cls, space: ChannelSpace, model: nn.Module) -> "ChannelIndex":
        """Trace ``model`` (the space's base model) once and record every gene's index maps."""
        DG = build_dependency_graph(model, space.example_input(), trace_context=space.trace_context)
        modules = dict(model.named_modules())
        names = {m: n for n, m in modules.items()}
        index = cls(space)
        for gi, gene in enumerate(space.genes):
            root = modules[gene.name]
            pruner = DG.get_pruner_of_module(root)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                group = DG.get_pruning_group(root, pruner.prune_out_channels, list(range(gene.width)))
            for item in group:
                target = item.dep.target.module
                if isinstance(target, nn.Parameter):
                    name = DG._param_to_name.get(target)
                    if name is None or name not in space.layers:
                        continue
                    key = (name, "out")
                    index.param_dims[name] = int(item.dep.target.pruning_dim)
                elif target in names and names[target] in space.layers:
                    key = (names[target], "out" if is_out_channel_fn(DG, item.dep.handler) else "in")
                else:
                    continue  # parameter-free op (activation, add, reshape)
                entries = index.members.setdefault(key, [])
                if any(e.gene == gi for e in entries):
                    continue
                entries.append(_Member(gi, torch.as_tensor(list(item.idxs), dtype=torch.long),
                                       torch.as_tensor(list(item.root_idxs), dtype=torch.long)))
        return index

    def genes_of(self, layer: str) -> tuple[list[int], list[int]]:
        """Positions (in ``space.genes``) of the genes that set ``layer``'s out and in channels."""
        outs = [m.gene for m in self.members.get((layer, "out"), [])]
        ins = [m.gene for m in self.members.get((layer, "in"), [])]
        return outs, ins

    def gene_keep(self, channels: Mapping[str, int], orders: Mapping[str, Sequence[int]]) -> list[torch.Tensor | None]:
        """Per gene, a boolean mask of its kept channels (``None`` when it keeps them all).

        The kept set is the one :func:`nas_prune.space.materialize` keeps for the same ``orders``
        (the most important channels first; grouped convs keep the same local channels per group).
        """
        keep: list[torch.Tensor | None] = []
        for gene in self.space.genes:
            c = channels[gene.name]
            if c >= gene.width:
                keep.append(None)
                continue
            order = orders.get(gene.name)
            if order is None:
                order = range(gene.width)
            pruned = pruned_indices(gene, c, list(order), None, channel_groups(self.space, gene))
            mask = torch.ones(gene.width, dtype=torch.bool)
            mask[torch.as_tensor(pruned, dtype=torch.long)] = False
            keep.append(mask)
        return keep

    def kept(self, arch: Architecture | Mapping[str, int], orders: Mapping[str, Sequence[int]], *,
             device: torch.device | None = None) -> KeptChannels:
        """Kept indices of every layer dimension that ``arch`` shrinks (sorted, as Torch-Pruning keeps them).

        The indices are worked out on the CPU (a few small integer tensors); with ``device`` they
        are moved there in one pinned, asynchronous copy rather than one per layer.
        """
        channels = self.space.validate(arch) if isinstance(arch, Architecture) else dict(arch)
        masks = self.gene_keep(channels, orders)
        out: KeptChannels = {}
        for key, entries in self.members.items():
            removed = [e.idxs[~masks[e.gene][e.roots]] for e in entries if masks[e.gene] is not None]
            if not removed:
                continue
            size = self._size(key)
            keep = torch.ones(size, dtype=torch.bool)
            keep[torch.cat(removed)] = False
            out[key] = torch.nonzero(keep).flatten()
        return _moved(out, device)

    def _size(self, key: tuple[str, str]) -> int:
        info = self.space.layers[key[0]]
        return info.in_ch if key[1] == "in" else info.out_ch


def _moved(kept: KeptChannels, device: torch.device | None) -> KeptChannels:
    """``kept`` on ``device``: the index tensors concatenated, copied once, split again (views)."""
    if device is None or device.type == "cpu" or not kept:
        return kept
    keys = list(kept)
    flat = to_device(torch.cat([kept[k] for k in keys]), device)
    return dict(zip(keys, flat.split([len(kept[k]) for k in keys])))


def check_orders(space: ChannelSpace, orders: Mapping[str, Sequence[int]] | None) -> dict[str, list[int]]:
    """Validate an importance mapping ``{gene: [channel indices, most important first]}``."""
    result: dict[str, list[int]] = {}
    for name, order in (orders or {}).items():
        gene = space.gene(name)
        order = [int(i) for i in order]
        if sorted(order) != list(range(gene.width)):
            raise InvalidArchitectureError(
                f"importance order for gene {name!r} is not a permutation of its {gene.width} channels: "
                "use the gates file of this space"
            )
        result[name] = order
    return result
