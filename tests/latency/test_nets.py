"""Sliced ONNX networks have exactly the shapes of materialized + exported ones."""

from __future__ import annotations

import pytest

from nas_prune.latency import arch_onnx_bytes
from nas_prune.latency._nets import NetFactory


def _conv_shapes(onnx_bytes: bytes) -> list:
    import onnx

    m = onnx.load_from_string(onnx_bytes)
    inits = {i.name: tuple(i.dims) for i in m.graph.initializer}
    alias = {n.output[0]: n.input[0] for n in m.graph.node if n.op_type == "Identity"}
    return [(n.op_type, inits[alias.get(n.input[1], n.input[1])], [a.i for a in n.attribute if a.name == "group"])
            for n in m.graph.node if n.op_type in ("Conv", "Gemm")]


def _check(space, seeds):
    import numpy as np
    import onnxruntime as ort

    factory = NetFactory(space)
    assert factory.method == "onnx-slice", factory.fallback_reason
    for seed in seeds:
        arch = space.sample(seed)
        sliced = factory.onnx(arch)
        assert _conv_shapes(sliced) == _conv_shapes(arch_onnx_bytes(space, arch, factory.base))
        sess = ort.InferenceSession(sliced, providers=["CPUExecutionProvider"])
        out = sess.run(None, {"input": np.zeros((1, *space.input_shape), np.float32)})[0]
        assert out.shape == (1, space.model["num_classes"])


def test_tiny_space_slices_like_export(tiny_space):
    _check(tiny_space, range(3))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mobilenet_v2-32", "resnet18-32"])
def test_real_spaces_slice_like_export(name):
    from nas_prune.space import ChannelSpace

    _check(ChannelSpace.load(f"search_spaces/{name}.json"), [7])


def test_fallback_materializes(tiny_space):
    factory = NetFactory(tiny_space, fast=False)
    assert factory.method == "materialize+export"
    arch = tiny_space.sample(1)
    assert _conv_shapes(factory.onnx(arch)) == _conv_shapes(NetFactory(tiny_space).onnx(arch))
