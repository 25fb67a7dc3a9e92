"""``--device auto|cpu|cuda[:N]``: resolution, teacher training and distillation on the chosen device.

The same code runs on the CPU here; the CUDA cases skip with their reason where no GPU is present.
"""

from __future__ import annotations

import pytest
import torch

from nas_prune.data import DataBundle
from nas_prune.errors import NasPruneError
from nas_prune.training import TrainConfig, autocast, dataset_on, evaluate, fit, model_device, resolve_device
from tests.conftest import run_main

NO_CUDA = "no CUDA GPU here (torch.cuda.is_available() is False): the GPU issue measures these where one is lent"
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)


def test_resolve_device(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu") and resolve_device(None) == torch.device("cpu")
    with pytest.raises(NasPruneError, match=r"--device cuda:1: this machine has 0 CUDA device\(s\) \(none\)"):
        resolve_device("cuda:1")
    with pytest.raises(NasPruneError, match="not understood: use auto"):
        resolve_device("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == torch.device("cuda:0") and resolve_device("CUDA:1") == torch.device("cuda:1")
    with pytest.raises(NasPruneError, match=r"has 2 CUDA device\(s\) \(cuda:0, cuda:1\)"):
        resolve_device("cuda:2")


def test_cli_refuses_an_absent_gpu_before_loading_anything(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, _, err = run_main(capsys, "train", "--space", str(tmp_path / "missing.json"), "--device", "cuda:0",
                            "-o", str(tmp_path / "t.pt"))
    assert code == 2 and "--device cuda:0: this machine has 0 CUDA device(s)" in err
    code, _, err = run_main(capsys, "distill", "--space", str(tmp_path / "missing.json"), "--arch", "a", "--teacher",
                            "t", "--device", "tpu", "-o", str(tmp_path / "o"))
    assert code == 2 and "--device 'tpu' is not understood" in err


def _train_on(device: str, tiny_space, digits16):
    torch.manual_seed(0)
    model = tiny_space.build_model()
    fit(model, digits16.train, digits16.val, TrainConfig(epochs=3, batch_size=32, lr=0.05, device=device))
    return model


def test_fit_on_the_cpu_device(tiny_space, digits16):
    model = _train_on("cpu", tiny_space, digits16)
    assert model_device(model).type == "cpu" and evaluate(model, digits16.val) > 0.15  # chance is 0.1


@cuda
def test_fit_on_cuda_with_data_on_the_device(tiny_space, digits16):
    model = _train_on("cuda", tiny_space, digits16)
    assert model_device(model).type == "cuda"
    on_gpu = dataset_on(digits16.val, torch.device("cuda"))
    assert on_gpu.images.is_cuda and evaluate(model, on_gpu) > 0.3 and evaluate(model, digits16.val) > 0.15  # chance is 0.1
    with autocast(torch.device("cuda")):
        assert model(on_gpu.transform(on_gpu.images[:4])).dtype == torch.bfloat16


def _distill_on(device: str, tiny_space, digits16, tmp_path):
    from nas_prune.distill import distill

    torch.manual_seed(0)
    teacher = tiny_space.build_model()
    fit(teacher, digits16.train, None, TrainConfig(epochs=2, batch_size=64, lr=0.05))
    small = DataBundle("digits", digits16.train.subset(torch.arange(256)), digits16.val, digits16.test, 10, 16)
    metrics = distill(tiny_space, tiny_space.uniform(0.5), teacher, small, method="kd", init="teacher", epochs=1,
                      out_dir=tmp_path / device.replace(":", "_"), measure_latency=False, device=device)
    return teacher, metrics


def test_distill_on_the_cpu_device(tiny_space, digits16, tmp_path):
    teacher, metrics = _distill_on("cpu", tiny_space, digits16, tmp_path)
    assert model_device(teacher).type == "cpu" and metrics["student"]["test_accuracy"] > 0.1
    assert "val_accuracy" in metrics["teacher"]


@cuda
def test_distill_on_cuda_leaves_cpu_exports(tiny_space, digits16, tmp_path):
    teacher, metrics = _distill_on("cuda", tiny_space, digits16, tmp_path)
    assert model_device(teacher).type == "cpu"  # the caller's teacher is back where it was
    assert metrics["student"]["test_accuracy"] > 0.1 and (tmp_path / "cuda" / "model.onnx").exists()


def test_run_takes_device_and_refuses_an_absent_gpu_up_front(monkeypatch):
    from nas_prune.pipeline import RunConfig

    assert RunConfig().device == "auto" and RunConfig(device="cpu").device == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(NasPruneError, match="--device cuda:0: this machine has 0 CUDA device"):
        RunConfig(device="cuda:0")
