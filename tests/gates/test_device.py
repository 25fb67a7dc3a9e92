"""Gate learning on a chosen device and on the user's own datasets or loaders.

The same code runs on the CPU here; the CUDA case skips with its reason where no GPU is present.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from nas_prune.data import ImageArrays, make_bundle
from nas_prune.errors import DataError, NasPruneError
from nas_prune.gates import GateHooks, learn_gates
from tests.conftest import run_main

NO_CUDA = "no CUDA GPU here (torch.cuda.is_available() is False): the GPU issue measures these where one is lent"
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)

_KW = dict(ratios=(0.5,), epochs=2, gamma=5.0, lr=0.05, batch_size=32)


def _tensors(split: ImageArrays, keep: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = split.transform(split.images), split.labels
    if keep is not None:
        x, y = x[y < keep], y[y < keep]
    return x, y


def test_explicit_cpu_gives_the_default_gates(tiny_space, tiny_data):
    explicit = learn_gates(tiny_space, tiny_data, device="cpu", **_KW)
    default = learn_gates(tiny_space, tiny_data, **_KW)
    assert [r.to_json() for r in explicit.runs] == [r.to_json() for r in default.runs]
    assert explicit.runs[0].nonzero_fraction <= 0.5


def test_users_datasets_and_loaders_are_taken_directly(tiny_space, tiny_data):
    train, val = TensorDataset(*_tensors(tiny_data.train)), TensorDataset(*_tensors(tiny_data.val))
    ref = learn_gates(tiny_space, make_bundle(train, val), **_KW)
    own = learn_gates(tiny_space, (DataLoader(train, batch_size=7), val), **_KW)  # its dataset, batched at 32
    assert own.settings["data"] == "user" and own.settings["n_train"] == len(tiny_data.train)
    assert [r.to_json() for r in own.runs] == [r.to_json() for r in ref.runs]
    assert own.runs[0].met_ratio and own.runs[0].nonzero_fraction <= 0.5


def test_bad_device_or_class_count_is_one_typed_line(tiny_space, tiny_data, capsys, tiny_space_file, tmp_path):
    with pytest.raises(NasPruneError, match="--device 'gpu' is not understood") as info:
        learn_gates(tiny_space, tiny_data, device="gpu", **_KW)
    assert "\n" not in str(info.value)
    seven = (TensorDataset(*_tensors(tiny_data.train, 7)), TensorDataset(*_tensors(tiny_data.val, 7)))
    with pytest.raises(DataError, match="the model has 10 outputs but dataset user has 7 classes"):
        learn_gates(tiny_space, seven, **_KW)
    code, _, err = run_main(capsys, "gates", "--space", str(tiny_space_file), "--device", "gpu", "-o",
                            str(tmp_path / "g.json"))
    assert code == 2 and "--device 'gpu' is not understood" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "g.json").exists()


def test_gates_follow_the_models_device_and_each_gene_keeps_its_largest(tiny_space):
    model = tiny_space.build_model()
    genes = [g for g in tiny_space.searchable_genes]
    initial = {g.name: torch.linspace(0.0, (i + 1) / len(genes), g.width) for i, g in enumerate(genes)}
    hooks = GateHooks(model, tiny_space, initial=initial)
    assert all(g.device.type == "cpu" for g in hooks.gates.values()) and len(hooks.gates) > 1
    hooks.keep_top_(1)  # one gate globally, but no gene may lose all its channels
    for name, g in hooks.gates.items():
        assert int((g != 0).sum()) == 1 and float(g.detach().max()) == pytest.approx(float(initial[name].max()))
    assert all(isinstance(v, float) for vs in hooks.values().values() for v in vs)


@cuda
def test_gates_learn_on_cuda(tiny_space, tiny_data):
    on_gpu = learn_gates(tiny_space, tiny_data, device="cuda", **_KW)
    run = on_gpu.runs[0]
    assert run.met_ratio and run.nonzero_fraction <= 0.5 and 0 <= run.val_accuracy <= 1
    model = tiny_space.build_model().cuda()
    hooks = GateHooks(model, tiny_space)
    assert all(g.is_cuda for g in hooks.gates.values())
    with hooks:
        assert model(tiny_space.example_input(2).cuda()).is_cuda
