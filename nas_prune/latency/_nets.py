"""ONNX models of many architectures of a space, fast.

Latency depends on layer shapes, not on weight values, so a table needs pruned *shapes*, not
trained pruned networks. Materializing with Torch-Pruning and exporting with torch costs ~0.7 s a
network here; slicing the full network's ONNX graph (already exported once, batch norm folded into
the convs) costs milliseconds. :class:`NetFactory` slices when the graph allows it (every weight
belongs to a Conv or Gemm whose shape matches the space's layer table; no other per-channel
constant) and falls back to materialize + export otherwise. Both give identical Conv/Gemm shapes
(tested on mobilenet_v2 and resnet18).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

__all__ = ["NetFactory", "OnnxSlicer"]

_SHAPE_FREE_OPS = {"Relu", "Clip", "Add", "Identity", "Constant", "GlobalAveragePool", "Flatten", "MaxPool",
                   "AveragePool", "Concat", "Sigmoid", "HardSigmoid", "HardSwish", "Dropout", "Conv", "Gemm"}


class OnnxSlicer:
    """Cut the full network's Conv/Gemm weights down to an architecture's channel counts.

    Raises:
        ValueError: the graph cannot be sliced safely (the caller falls back to torch export).
    """

    def __init__(self, onnx_bytes: bytes, space: Any) -> None:
        import onnx
        from onnx import numpy_helper

        model = onnx.load_from_string(onnx_bytes)
        graph = model.graph
        ops = {n.op_type for n in graph.node}
        if not ops <= _SHAPE_FREE_OPS:
            raise ValueError(f"ops {sorted(ops - _SHAPE_FREE_OPS)} may carry channel-sized constants")
        inits = {i.name: i for i in graph.initializer}
        alias = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Identity" and n.input[0] in inits}
        for n in graph.node:
            if n.op_type == "Constant":
                t = next((a.t for a in n.attribute if a.name == "value"), None)
                if t is None or int(np.prod(t.dims)) > 1:
                    raise ValueError("a non-scalar Constant node")
        layers = [(name, info) for name, info in space.layers.items() if info.kind in ("conv", "linear")]
        nodes = [n for n in graph.node if n.op_type in ("Conv", "Gemm")]
        if len(nodes) != len(layers):
            raise ValueError(f"{len(nodes)} Conv/Gemm nodes for {len(layers)} layers")
        used = set()
        self.plan = []
        for node, (name, info) in zip(nodes, layers):
            srcs = [alias.get(x, x) for x in node.input[1:]]
            if not all(s in inits for s in srcs):
                raise ValueError(f"node {node.name} has computed weights")
            w = numpy_helper.to_array(inits[srcs[0]])
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            if node.op_type == "Gemm":
                if attrs.get("transB", 0) != 1 or w.shape != (info.out_ch, info.in_ch):
                    raise ValueError(f"Gemm {node.name} does not match layer {name}")
            else:
                groups = int(attrs.get("group", 1))
                if w.shape[0] != info.out_ch or w.shape[1] * groups != info.in_ch or groups != info.groups:
                    raise ValueError(f"Conv {node.name} {w.shape} does not match layer {name}")
            arrays = [w] + [numpy_helper.to_array(inits[s]) for s in srcs[1:]]
            used.update(srcs)
            self.plan.append((node.name, name, info, arrays))
        for name, init in inits.items():
            if name not in used and int(np.prod(init.dims)) > 1:
                raise ValueError(f"initializer {name} is used outside Conv/Gemm weights")
        weight_inputs = {x for n in nodes for x in n.input[1:]}
        for n in graph.node:
            if n.op_type not in ("Conv", "Gemm") and any(x in alias for x in n.input):
                raise ValueError(f"node {n.name} reads a weight")
            if n.op_type in ("Conv", "Gemm") and n.input[0] in alias:
                raise ValueError(f"node {n.name} reads a weight as its data input")
        # a skeleton graph without the weights; each architecture gets fresh, unshared initializers
        del graph.initializer[:]
        for n in [n for n in graph.node if n.op_type == "Identity" and n.output[0] in alias]:
            graph.node.remove(n)
        assert weight_inputs  # every Conv/Gemm weight is rewired below
        for n in graph.node:
            if n.op_type in ("Conv", "Gemm"):
                for k in range(1, len(n.input)):
                    n.input[k] = f"{n.name}__w{k}"
        for vi in list(graph.value_info):
            graph.value_info.remove(vi)
        self.skeleton = model.SerializeToString()

    def make(self, layer_channels: Mapping[str, tuple[int, int]]) -> bytes:
        """ONNX bytes of the network whose conv/linear layers have ``{layer: (in, out)}`` channels."""
        import onnx
        from onnx import numpy_helper

        model = onnx.load_from_string(self.skeleton)
        by_name = {n.name: n for n in model.graph.node if n.op_type in ("Conv", "Gemm")}
        for node_name, layer, info, arrays in self.plan:
            i, o = layer_channels[layer]
            node = by_name[node_name]
            w = arrays[0]
            if info.kind == "linear":
                w = w[:o, :i]
            elif info.depthwise:
                w = w[:o]
                for a in node.attribute:
                    if a.name == "group":
                        a.i = o
            else:
                w = w[:o, : i // info.groups]
            cut = [w] + [a[:o] for a in arrays[1:]]
            for k, arr in enumerate(cut, start=1):
                model.graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(arr), node.input[k]))
        return model.SerializeToString()


class NetFactory:
    """ONNX bytes for architectures of ``space`` (sliced from one export; torch export as fallback)."""

    def __init__(self, space: Any, *, fast: bool = True) -> None:
        from nas_prune.latency._measure import to_onnx_bytes

        self.space = space
        self.base = space.build_model()
        self.full_onnx = to_onnx_bytes(self.base, space.input_shape)
        self.slicer: OnnxSlicer | None = None
        self.fallback_reason = "disabled" if not fast else None
        if fast:
            try:
                self.slicer = OnnxSlicer(self.full_onnx, space)
            except (ValueError, KeyError, IndexError) as exc:
                self.fallback_reason = str(exc)

    @property
    def method(self) -> str:
        return "onnx-slice" if self.slicer is not None else "materialize+export"

    def onnx(self, channels: Mapping[str, int] | Any) -> bytes:
        from nas_prune.space import Architecture

        arch = channels if isinstance(channels, Architecture) else Architecture(self.space.id, dict(channels))
        full = self.space.validate(arch)
        if all(full[g.name] == g.width for g in self.space.genes):
            return self.full_onnx
        if self.slicer is not None:
            return self.slicer.make(self.space.layer_channels(arch))
        from nas_prune.latency._measure import arch_onnx_bytes

        return arch_onnx_bytes(self.space, arch, self.base)
