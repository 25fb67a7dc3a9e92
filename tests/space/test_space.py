from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from nas_prune.errors import InvalidArchitectureError, InvalidFileError, NasPruneError, SpaceMismatchError, UnknownModelError
from nas_prune.export import export_onnx
from nas_prune.models import TESTED_MODELS
from nas_prune.space import Architecture, ChannelSpace, materialize, width_choices


def measured_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Conv/linear multiply-accumulates counted from the real output shapes (independent of the space)."""
    total = [0]

    def hook(m, inputs, out):
        if isinstance(m, nn.Conv2d):
            total[0] += out[0].numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.Linear):
            total[0] += out[0].numel() * m.in_features

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return total[0]


def test_width_choices():
    assert width_choices(64, round_to=8, min_ratio=0.1) == ([8, 16, 24, 32, 40, 48, 56, 64], 8)
    assert width_choices(116, round_to=8, min_ratio=0.25)[0] == [32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 116]
    assert width_choices(4, round_to=8, min_ratio=0.1)[0] == [4]
    choices, step = width_choices(400, round_to=8, min_ratio=0.1, channel_groups=25)
    assert step == 25 and all(c % 25 == 0 for c in choices) and choices[-1] == 400


def test_tiny_space_groups(tiny_space):
    names = {g.name: g for g in tiny_space.genes}
    # stem output and the residual block's output are one gene; block-internal 32 (with depthwise) another.
    assert list(names) == ["stem.0", "block.0", "head.0"]
    assert names["stem.0"].width == 16 and names["block.0"].width == 32
    members = {(m[0], m[1]) for m in names["stem.0"].members}
    assert ("block.6", "out") in members and ("head.0", "in") in members  # residual add couples them
    assert ("fc", "out") not in {(m[0], m[1]) for g in tiny_space.genes for m in g.members}
    dw = {(m[0], m[1]) for m in names["block.0"].members}
    assert ("block.3", "out") in dw  # the depthwise conv follows its producer


def test_roundtrip_json(tiny_space, tmp_path):
    path = tiny_space.save(tmp_path / "s.json")
    loaded = ChannelSpace.load(path)
    assert loaded.id == tiny_space.id and loaded.genes == tiny_space.genes
    assert loaded.input_shape == (3, 16, 16)
    obj = json.loads(path.read_text())
    assert obj["nni_search_space"]["block.0"] == {"_type": "quniform", "_value": [8, 32, 8]}
    dists = loaded.optuna_distributions()
    assert dists["block.0"].low == 8 and dists["block.0"].high == 32 and dists["block.0"].step == 8
    model = loaded.build_model()
    assert isinstance(model, nn.Module)


@pytest.mark.parametrize("text", ["", "{", "[]", '{"format": "nas-prune/space", "version": 99}',
                                  '{"format": "nas-prune/space", "version": 1, "genes": 3}'])
def test_corrupt_space_is_one_line_error(tmp_path, text):
    p = tmp_path / "s.json"
    p.write_text(text)
    with pytest.raises(InvalidFileError) as info:
        ChannelSpace.load(p)
    assert str(p) in str(info.value) and "\n" not in str(info.value)


def test_arch_validation(tiny_space):
    arch = tiny_space.sample(0)
    assert tiny_space.validate(arch)
    with pytest.raises(InvalidArchitectureError, match="block.0"):
        tiny_space.validate(Architecture(tiny_space.id, {"block.0": 12}))
    with pytest.raises(InvalidArchitectureError):
        tiny_space.validate(Architecture(tiny_space.id, {"block.0": 0}))
    with pytest.raises(InvalidArchitectureError):
        tiny_space.validate(Architecture(tiny_space.id, {"nope": 8}))
    with pytest.raises(SpaceMismatchError):
        tiny_space.validate(Architecture("other-space", {}))


def test_decode_snaps_and_rejects(tiny_space):
    arch = tiny_space.decode({"block.0": 17, "stem.0": 16, "lr": 0.1})
    assert arch.channels["block.0"] == 16
    with pytest.raises(InvalidArchitectureError, match="outside"):
        tiny_space.decode({"block.0": 400})


def test_optuna_suggest(tiny_space):
    import optuna

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    arch = tiny_space.suggest(trial)
    assert set(trial.params) == {g.name for g in tiny_space.searchable_genes}
    tiny_space.validate(arch)


def test_unknown_model():
    with pytest.raises(UnknownModelError, match="nas-prune models"):
        ChannelSpace.from_name("resnet9000")


def check_model(space: ChannelSpace, seed: int, tmp_path) -> None:
    base = space.build_model()
    arch = space.sample(seed)
    pruned = materialize(base, arch, space=space)
    x = space.example_input(2)
    with torch.no_grad():
        y = pruned(x)
    assert y.shape == (2, space.model["num_classes"])
    counts = space.count(arch)
    assert counts["params"] == sum(p.numel() for p in pruned.parameters())
    assert counts["flops"] == measured_macs(pruned, x[:1])
    assert counts["params"] <= space.count(space.full())["params"]
    # the original is untouched
    assert sum(p.numel() for p in base.parameters()) == space.count(space.full())["params"]
    # ONNX export runs in onnxruntime and matches PyTorch
    path = export_onnx(pruned, x[:1], tmp_path / "m.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = sess.run(None, {"input": x.numpy()})[0]
    np.testing.assert_allclose(out, y.numpy(), rtol=1e-3, atol=1e-3)
    # rebuilding from the arch JSON alone gives the same shapes: the state_dict loads
    arch2 = Architecture.from_json(json.loads(json.dumps(arch.to_json())))
    rebuilt = materialize(space.build_model(), arch2, space=space)
    rebuilt.load_state_dict(pruned.state_dict())


@pytest.mark.parametrize("name", TESTED_MODELS)
def test_every_model_32px(name, tmp_path):
    space = ChannelSpace.from_name(name, input_size=32, num_classes=10)
    assert space.searchable_genes, name
    check_model(space, seed=1, tmp_path=tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "shufflenet_v2_x1_0"])
def test_some_models_224px_1000_classes(name, tmp_path):
    space = ChannelSpace.from_name(name, input_size=224, num_classes=1000)
    check_model(space, seed=2, tmp_path=tmp_path)


def test_shufflenet_stream_fixed_branches_free():
    space = ChannelSpace.from_name("shufflenet_v2_x1_0")
    fixed = [g for g in space.genes if g.fixed]
    assert fixed and all("shuffle" in g.fixed for g in fixed)
    assert any("branch2" in g.name for g in space.searchable_genes)


def test_importance_order_decides_kept_channels(tiny_space):
    base = tiny_space.build_model()
    arch = Architecture(tiny_space.id, {"block.0": 8})
    order = list(range(31, -1, -1))  # last channels most important
    pruned = materialize(base, arch, {"block.0": order}, space=tiny_space)
    kept = pruned.block[0].weight.detach()
    torch.testing.assert_close(kept, base.block[0].weight.detach()[24:32])  # kept in original order
    with pytest.raises(InvalidArchitectureError, match="permutation"):
        materialize(base, arch, {"block.0": [0, 0, 1]}, space=tiny_space)


def test_grouped_conv_keeps_groups_equal():
    space = ChannelSpace.from_name("regnet_x_400mf")
    grouped = [g for g in space.searchable_genes if g.step % 25 == 0 and g.width == 400]
    assert grouped
    arch = Architecture(space.id, {grouped[0].name: grouped[0].choices[0]})
    pruned = materialize(space.build_model(), arch, space=space)
    with torch.no_grad():
        pruned(space.example_input())


@pytest.mark.parametrize("name", ["mobilenet_v2", "resnet18"])
def test_shipped_spaces_are_current(name):
    from nas_prune.space import shipped_space, shipped_spaces_dir

    shipped = ChannelSpace.load(shipped_space(f"{name}-32"))
    assert shipped.id == ChannelSpace.from_name(name).id, "run 'make spaces' to regenerate nas_prune/space/spaces/"
    nni = json.loads((shipped_spaces_dir() / "nni" / f"{name}-32.json").read_text())
    assert nni == shipped.nni_search_space()


def test_shipped_spaces_are_package_data_linked_from_the_checkout():
    from pathlib import Path

    import nas_prune.space
    from nas_prune.space import shipped_space, shipped_spaces, shipped_spaces_dir

    assert shipped_spaces_dir() == Path(nas_prune.space.__file__).parent / "spaces"
    names = {p.stem for p in shipped_spaces()}
    assert {"mobilenet_v2-32", "resnet18-224"} <= names and len(names) == 28
    assert shipped_space("resnet18-32.json") == shipped_space("resnet18-32")
    with pytest.raises(NasPruneError, match="no shipped space 'resnet19-32': use one of convnext_tiny-224, "):
        shipped_space("resnet19-32")
    link = Path(__file__).resolve().parents[2] / "search_spaces"  # the README's path in a checkout
    assert link.resolve() == shipped_spaces_dir().resolve()
