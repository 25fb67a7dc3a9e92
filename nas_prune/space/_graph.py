"""Channel groups of a model, found with Torch-Pruning's dependency graph (DepGraph).

DepGraph: Fang et al., "DepGraph: Towards Any Structural Pruning", CVPR 2023. Torch-Pruning traces
the model with autograd and couples every channel that must be removed together (residual adds,
depthwise convs, concatenations, flatten into a linear layer). nas-prune makes one gene per group.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager

import torch
import torch_pruning as tp
from torch import nn

from nas_prune.errors import UnsupportedModelError

__all__ = ["GroupInfo", "LayerInfo", "build_dependency_graph", "analyse_model", "is_out_channel_fn", "output_layer_name"]

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm2d)


@dataclass
class LayerInfo:
    """Shape facts of one parametrised layer at full width (what FLOPs and params are counted from)."""

    kind: str  # "conv" | "linear" | "norm" | "param"
    in_ch: int = 0
    out_ch: int = 0
    groups: int = 1
    kernel: int = 1  # product of the kernel's spatial sizes
    bias: bool = False
    positions: int = 1  # output positions per sample (H*W for a conv, tokens for a linear)
    params_per_ch: int = 0  # norm layers and loose parameters: parameters per channel
    depthwise: bool = False

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


@dataclass
class GroupInfo:
    """One group of coupled channels (a gene before choices are attached)."""

    root: str
    width: int
    members: list[tuple[str, str, int]] = field(default_factory=list)  # (layer, "in"|"out", n)
    channel_groups: int = 1  # a grouped conv in the group: widths must stay multiples of this
    fixed: str | None = None  # why the group cannot be pruned, if it cannot


def output_layer_name(model: nn.Module, example_input: torch.Tensor) -> str:
    """Name of the last conv/linear layer that runs: the classifier, whose outputs are never pruned."""
    order: list[str] = []
    hooks = [
        m.register_forward_hook(lambda mod, i, o, n=name: order.append(n))
        for name, m in model.named_modules()
        if isinstance(m, (*_CONV, nn.Linear))
    ]
    _forward_with_hooks(model, example_input, hooks)
    if not order:
        raise UnsupportedModelError("the model has no conv or linear layer: nothing to prune")
    return order[-1]


def _layer_table(model: nn.Module, example_input: torch.Tensor) -> dict[str, LayerInfo]:
    table: dict[str, LayerInfo] = {}
    hooks = []

    def conv_hook(name: str) -> Callable[..., None]:
        def hook(mod: nn.Module, inputs: Any, out: torch.Tensor) -> None:
            if name in table or not isinstance(out, torch.Tensor):
                return
            if isinstance(mod, _CONV):
                positions = out[0].numel() // mod.out_channels
                table[name] = LayerInfo(
                    "conv", mod.in_channels, mod.out_channels, mod.groups,
                    math.prod(mod.kernel_size), mod.bias is not None, positions,
                    depthwise=mod.groups > 1 and mod.groups == mod.in_channels == mod.out_channels,
                )
            else:
                positions = out[0].numel() // mod.out_features
                table[name] = LayerInfo(
                    "linear", mod.in_features, mod.out_features, 1, 1, mod.bias is not None, positions
                )

        return hook

    for name, m in model.named_modules():
        if isinstance(m, (*_CONV, nn.Linear)):
            hooks.append(m.register_forward_hook(conv_hook(name)))
        elif isinstance(m, _NORM):
            n_ch = _norm_channels(m)
            n_params = sum(p.numel() for p in m.parameters(recurse=False))
            if n_ch:
                table[name] = LayerInfo("norm", n_ch, n_ch, params_per_ch=n_params // n_ch)
    _forward_with_hooks(model, example_input, hooks)
    return table


def _forward_with_hooks(model: nn.Module, example_input: torch.Tensor, hooks: list[Any]) -> None:
    """One forward pass without gradients; the hooks are removed whatever happens."""
    try:
        with torch.no_grad():
            model(example_input)
    finally:
        for h in hooks:
            h.remove()


def _norm_channels(m: nn.Module) -> int:
    if isinstance(m, nn.LayerNorm):
        return int(m.normalized_shape[-1])
    if isinstance(m, nn.GroupNorm):
        return m.num_channels
    return int(getattr(m, "num_features", 0))


def build_dependency_graph(
    model: nn.Module,
    example_input: torch.Tensor,
    *,
    trace_context: Callable[[], ContextManager[None]] = contextlib.nullcontext,
) -> tp.DependencyGraph:
    """Trace ``model`` with Torch-Pruning; a failure becomes :class:`UnsupportedModelError`."""
    try:
        with trace_context(), warnings.catch_warnings(), torch.enable_grad():
            warnings.simplefilter("ignore")
            return tp.DependencyGraph().build_dependency(model, example_inputs=example_input, verbose=False)
    except Exception as exc:  # Torch-Pruning raises anything from its tracer
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise UnsupportedModelError(
            f"Torch-Pruning cannot trace this model ({type(exc).__name__}: {first}): "
            "register a trace adapter for the unsupported op in nas_prune.models"
        ) from None


def is_out_channel_fn(DG: tp.DependencyGraph, fn: Callable[..., Any]) -> bool:
    """Whether Torch-Pruning's handler ``fn`` prunes output channels (depthwise convolutions included)."""
    return DG.is_out_channel_pruning_fn(fn) or fn is tp.pruner.function.prune_depthwise_conv_out_channels




def analyse_model(
    model: nn.Module,
    example_input: torch.Tensor,
    *,
    trace_context: Callable[[], ContextManager[None]] = contextlib.nullcontext,
) -> tuple[dict[str, LayerInfo], list[GroupInfo], int]:
    """Find the layer table, the channel groups and the parameters no group touches.

    Returns:
        ``(layers, groups, fixed_params)``: shape facts per layer, one :class:`GroupInfo` per
        channel group (the classifier's output group excluded), and the count of parameters that
        belong to no layer of the table (they never change with the architecture).
    """
    model = model.eval()
    layers = _layer_table(model, example_input)
    classifier = output_layer_name(model, example_input)
    DG = build_dependency_graph(model, example_input, trace_context=trace_context)
    module_names = {m: n for n, m in model.named_modules()}
    module_order = {n: i for i, (n, _m) in enumerate(model.named_modules())}
    groups: list[GroupInfo] = []
    ignored = [dict(model.named_modules())[classifier]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        all_groups = list(DG.get_all_groups(ignored_layers=ignored, root_module_types=(*_CONV, nn.Linear)))
    for group in all_groups:
        root_module = group[0].dep.target.module
        info = GroupInfo(root=module_names[root_module], width=len(group[0].idxs))
        seen: set[tuple[str, str]] = set()
        for dep, idxs in group:
            target = dep.target.module
            if isinstance(target, nn.Parameter):
                name = DG._param_to_name.get(target)
                if name is None:
                    continue
                if name not in layers:
                    layers[name] = LayerInfo("param", target.shape[dep.target.pruning_dim],
                                             target.shape[dep.target.pruning_dim],
                                             params_per_ch=target.numel() // target.shape[dep.target.pruning_dim])
                key = (name, "out")
            elif target in module_names:
                name = module_names[target]
                if name not in layers:
                    continue  # a parameter-free module (activation, pooling)
                key = (name, "out" if is_out_channel_fn(DG, dep.handler) else "in")
            else:
                if "IndexSelect" in str(target):
                    info.fixed = "flows through a channel shuffle"
                continue
            if key in seen:
                continue
            seen.add(key)
            info.members.append((key[0], key[1], len(idxs)))
            layer = layers[key[0]]
            if layer.kind == "conv" and layer.groups > 1 and not layer.depthwise:
                info.channel_groups = math.lcm(info.channel_groups, layer.groups)
        # Name the group after its first conv/linear output in module order (stable and readable).
        outs = [m for m in info.members if m[1] == "out" and layers[m[0]].kind in ("conv", "linear")]
        info.root = min(outs, key=lambda m: module_order[m[0]])[0] if outs else info.root
        groups.append(info)
    groups.sort(key=lambda g: module_order.get(g.root, 0))
    covered = 0
    for name, layer in layers.items():
        covered += layer_params(layer, layer.in_ch, layer.out_ch)
    total = sum(p.numel() for p in model.parameters())
    return layers, groups, total - covered


def layer_params(layer: LayerInfo, in_ch: int, out_ch: int) -> int:
    """Parameters of ``layer`` at the given channel counts."""
    if layer.kind == "conv":
        groups = out_ch if layer.depthwise else layer.groups
        return out_ch * (in_ch // groups) * layer.kernel + (out_ch if layer.bias else 0)
    if layer.kind == "linear":
        return out_ch * in_ch + (out_ch if layer.bias else 0)
    return out_ch * layer.params_per_ch


def layer_macs(layer: LayerInfo, in_ch: int, out_ch: int) -> int:
    """Multiply-accumulates of ``layer`` per sample (conv and linear only)."""
    if layer.kind == "conv":
        groups = out_ch if layer.depthwise else layer.groups
        return out_ch * (in_ch // groups) * layer.kernel * layer.positions
    if layer.kind == "linear":
        return out_ch * in_ch * layer.positions
    return 0
