"""Layer kinds: what a PruningNet does with each kind of layer of a space's table.

Every layer a PruningNet handles has a :class:`LayerKind`, and every kind one :class:`Handler` in
one table (:data:`HANDLERS`): how the layer's tensors are taken from the base model when the
PruningNet is built (``adopt``), and how they are generated or cropped for a candidate (``crop``),
into a :class:`Bound` that :meth:`~nas_prune.pruningnet.PruningNet.bind` then binds to the base
model. A new kind is one enum member and one table entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Callable

import torch
from torch import nn

from nas_prune.pruningnet._channels import KeptChannels
from nas_prune.pruningnet._generators import make_generator

if TYPE_CHECKING:
    from nas_prune.pruningnet._net import PruningNet

__all__ = ["Bound", "HANDLERS", "Handler", "LayerKind", "flat_key"]

_BN = nn.modules.batchnorm._BatchNorm
_CONV = nn.modules.conv._ConvNd


def flat_key(name: str) -> str:
    """``name`` (a dotted module or parameter name) as one attribute or ``ModuleDict`` key: ``a.b`` -> ``a__b``."""
    return name.replace(".", "__")


def _resolve(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    """The module holding the dotted attribute ``name`` of ``model``, and the attribute's own name."""
    path = name.split(".")
    module = model
    for p in path[:-1]:
        module = getattr(module, p)
    return module, path[-1]


class LayerKind(str, Enum):
    """The kinds of layer in a space's table (``space.layers[name].kind``) that a PruningNet handles."""

    CONV = "conv"  # weight generated from the encoding, cropped on both channel dimensions
    LINEAR = "linear"  # same
    NORM = "norm"  # shared affine parameters, cropped; BatchNorm statistics per candidate
    PARAM = "param"  # a loose parameter (e.g. a class token), shared and cropped

    @classmethod
    def of(cls, kind: str) -> "LayerKind | None":
        """The kind named ``kind``, or ``None`` for a layer a PruningNet leaves alone."""
        try:
            return cls(kind)
        except ValueError:
            return None


class Bound:
    """A candidate's cropped tensors, ready to be bound to the base model's modules.

    Args:
        channels: The candidate's width of every gene.
        kept: The kept channel indices of every layer dimension the candidate crops.
    """

    def __init__(self, channels: dict[str, int], kept: KeptChannels) -> None:
        self.channels = channels
        self.kept = kept
        self.attrs: dict[tuple[str, str], Any] = {}  # (module name, attribute) -> value
        self.bn_sizes: dict[str, int] = {}


# ---------------------------------------------------------------------- handlers
#: ``adopt(pnet, name, info, modules, base)``: at build, take the layer's tensors from the base model
#: into the PruningNet; ``False`` leaves the layer alone.
_Adopt = Callable[["PruningNet", str, Any, dict[str, nn.Module], nn.Module], bool]
#: ``crop(pnet, name, bound, encoding)``: per candidate, the layer's generated or cropped tensors.
_Crop = Callable[["PruningNet", str, Bound, torch.Tensor], None]


@dataclass(frozen=True)
class Handler:
    """What a PruningNet does with the layers of one :class:`LayerKind`.

    Attributes:
        adopt: At build, takes the layer's tensors from the base model into the PruningNet.
        crop: Per candidate, puts the layer's generated or cropped tensors into the :class:`Bound`.
        generated: Whether the layer's weight comes from a generator.
    """

    adopt: _Adopt
    crop: _Crop
    generated: bool = False  # its weight comes from a generator (:meth:`PruningNet.full_weights`)


def _adopt_weighted(pnet: PruningNet, name: str, info: Any, modules: dict[str, nn.Module], base: nn.Module) -> bool:
    """Move a conv or linear layer's weight into a new generator and its bias into the shared parameters."""
    module: Any = modules[name]  # a conv or linear layer
    outs, ins = pnet.index.genes_of(name)
    inputs = list(dict.fromkeys(outs + ins)) or [len(pnet.space.genes)]  # the last entry: a constant 1
    # Not persistent: rebuilt from the space, but moved with the PruningNet (indexing on its device).
    pnet.gene_inputs.register_buffer(flat_key(name), torch.as_tensor(inputs, dtype=torch.long), persistent=False)
    pnet.generators[flat_key(name)] = make_generator(
        str(pnet.config["generator"]), module.weight.detach(), len(inputs),
        hidden=int(pnet.config["hidden"]), rank=int(pnet.config["rank"]))
    del module.weight
    if module.bias is not None:
        pnet.shared[flat_key(name + ".bias")] = nn.Parameter(module.bias.detach().clone())
    del module.bias
    module.bias = None
    return True


def _crop_weighted(pnet: PruningNet, name: str, bound: Bound, enc: torch.Tensor) -> None:
    """Generate a conv or linear layer's weight for the candidate and crop it and its bias."""
    module = pnet._modules_by_name[name]
    ko, ki = bound.kept.get((name, "out")), bound.kept.get((name, "in"))
    w = pnet.generators[flat_key(name)](enc[pnet._gene_inputs(name)])
    if ko is not None:
        w = w.index_select(0, ko)
    if isinstance(module, _CONV) and module.groups > 1:
        info = pnet.space.layers[name]
        if info.depthwise:
            bound.attrs[(name, "groups")] = w.shape[0]
        elif ki is not None:  # grouped: every group keeps the same local input channels
            w = w.index_select(1, torch.unique(ki % (info.in_ch // module.groups)))
    elif ki is not None:
        w = w.index_select(1, ki)
    bound.attrs[(name, "weight")] = w
    key = flat_key(name + ".bias")
    bias = pnet.shared[key] if key in pnet.shared else None
    if bias is not None and ko is not None:
        bias = bias.index_select(0, ko)
    bound.attrs[(name, "bias")] = bias


def _adopt_norm(pnet: PruningNet, name: str, info: Any, modules: dict[str, nn.Module], base: nn.Module) -> bool:
    """Share a norm layer's affine parameters; drop a BatchNorm's running statistics (per choice with ``per_choice_bn``)."""
    module = modules.get(name)
    if module is None:
        return False
    for attr in ("weight", "bias"):
        p = getattr(module, attr, None)
        if isinstance(p, nn.Parameter):
            pnet.shared[flat_key(f"{name}.{attr}")] = nn.Parameter(p.detach().clone())
            delattr(module, attr)
            setattr(module, attr, None)
    if isinstance(module, _BN) and module.track_running_stats:
        del module.running_mean, module.running_var
        module.running_mean = module.running_var = None
        outs = pnet.index.genes_of(name)[0]
        if pnet.per_choice_bn and len(outs) == 1:
            n_choices = len(pnet.space.genes[outs[0]].choices)
            pnet._choice_gene[name] = outs[0]
            pnet.choice_bn.register_buffer(flat_key(name) + "__mean", torch.zeros(n_choices, info.out_ch))
            pnet.choice_bn.register_buffer(flat_key(name) + "__var", torch.ones(n_choices, info.out_ch))
    return True


def _crop_norm(pnet: PruningNet, name: str, bound: Bound, enc: torch.Tensor) -> None:
    """Crop a norm layer's shared affine parameters to the candidate's kept channels."""
    module = pnet._modules_by_name[name]
    ko = bound.kept.get((name, "out"))
    size = pnet.space.layers[name].out_ch if ko is None else len(ko)
    for attr in ("weight", "bias"):
        k = flat_key(f"{name}.{attr}")
        if k in pnet.shared:
            p = pnet.shared[k]
            bound.attrs[(name, attr)] = p if ko is None else p.index_select(0, ko)
    if isinstance(module, nn.LayerNorm):
        bound.attrs[(name, "normalized_shape")] = (size,)
    if isinstance(module, _BN):
        bound.bn_sizes[name] = size


def _adopt_param(pnet: PruningNet, name: str, info: Any, modules: dict[str, nn.Module], base: nn.Module) -> bool:
    """Move a loose parameter of the base model into the shared parameters."""
    parent, attr = _resolve(base, name)
    p = getattr(parent, attr)
    pnet.shared[flat_key(name)] = nn.Parameter(p.detach().clone())
    delattr(parent, attr)
    setattr(parent, attr, None)
    return True


def _crop_param(pnet: PruningNet, name: str, bound: Bound, enc: torch.Tensor) -> None:
    """Crop a loose shared parameter to the candidate's kept channels."""
    p = pnet.shared[flat_key(name)]
    ko = bound.kept.get((name, "out"))
    if ko is not None:
        p = p.index_select(pnet.index.param_dims.get(name, 0), ko)
    parent, attr = name.rsplit(".", 1)
    bound.attrs[(parent, attr)] = p


_WEIGHTED = Handler(_adopt_weighted, _crop_weighted, generated=True)

#: One handler per layer kind: a new kind is one enum member and one entry here.
HANDLERS: dict[LayerKind, Handler] = {
    LayerKind.CONV: _WEIGHTED,
    LayerKind.LINEAR: _WEIGHTED,
    LayerKind.NORM: Handler(_adopt_norm, _crop_norm),
    LayerKind.PARAM: Handler(_adopt_param, _crop_param),
}
