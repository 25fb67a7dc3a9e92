"""PruningNet training and scoring on a chosen device, and on the user's own datasets or loaders.

The same code runs on the CPU here; the CUDA cases skip with their reason where no GPU is present.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from nas_prune.data import DataBundle, ImageArrays
from nas_prune.errors import DataError, NasPruneError
from nas_prune.pruningnet import PruningNet, PruningNetEvaluator, train_pruningnet, uniform_width_check
from nas_prune.training import model_device
from tests.conftest import run_main

NO_CUDA = "no CUDA GPU here (torch.cuda.is_available() is False): the GPU issue measures these where one is lent"
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)


@pytest.fixture(scope="module")
def small(digits16):
    """128 training and 64 validation images of digits at 16x16 (in memory)."""
    return DataBundle("digits", digits16.train.subset(torch.arange(128)), digits16.val.subset(torch.arange(64)),
                      digits16.test, 10, 16)


def _tensors(split: ImageArrays, keep: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = split.transform(split.images), split.labels
    if keep is not None:
        mask = y < keep
        x, y = x[mask], y[mask]
    return x, y


def _train(tiny_space, data, device="cpu", **kw):
    return train_pruningnet(tiny_space, data, epochs=1, batch_size=32, n_random=1, seed=0, device=device, **kw)


def test_explicit_cpu_trains_and_scores_on_the_cpu(tiny_space, small):
    pnet = _train(tiny_space, small, device="cpu")
    assert model_device(pnet).type == "cpu" and pnet.device == torch.device("cpu")
    evaluator = PruningNetEvaluator(pnet, small, recal_batches=2, batch_size=32, device="cpu")
    assert evaluator.device == torch.device("cpu") and all(x.device.type == "cpu" for x in evaluator.recal)
    res = evaluator.score(tiny_space.uniform(0.5))
    assert 0 < res["score"] <= 1 and 0 <= res["accuracy"] <= 1
    check = uniform_width_check(evaluator, tiny_space, widths=(0.5, 1.0))
    assert len(check["scores"]) == 2


@pytest.mark.parametrize("spelling", ["gpu", "cuda:x", "tpu:0"])
def test_an_unknown_device_is_one_typed_line(tiny_space, small, spelling):
    for call in (lambda: _train(tiny_space, small, device=spelling),
                 lambda: PruningNetEvaluator(PruningNet(tiny_space), small, device=spelling)):
        with pytest.raises(NasPruneError, match="is not understood: use auto") as info:
            call()
        assert "\n" not in str(info.value)


def test_an_absent_gpu_is_refused_before_training(tiny_space, small, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(NasPruneError, match=r"--device cuda:0: this machine has 0 CUDA device\(s\)"):
        _train(tiny_space, small, device="cuda:0")


def test_cli_device_errors_exit_2_in_one_line(capsys, tiny_space, tiny_space_file, tmp_path, monkeypatch):
    pnet = PruningNet(tiny_space).save(tmp_path / "pnet.pt")
    runs = [
        ("pruningnet", "train", "--space", str(tiny_space_file), "--device", "gpu", "-o", str(tmp_path / "p.pt")),
        ("pruningnet", "eval", "--pnet", str(pnet), "--arch", "full", "--device", "gpu"),
        ("pruningnet", "export", "--pnet", str(pnet), "--arch", "full", "--device", "gpu", "-o", str(tmp_path / "m.pt")),
    ]
    for args in runs:
        code, _, err = run_main(capsys, *args)
        assert code == 2 and "--device 'gpu' is not understood" in err and len(err.strip().splitlines()) == 1, args
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, _, err = run_main(capsys, "pruningnet", "train", "--space", str(tmp_path / "missing.json"), "--device",
                            "cuda", "-o", str(tmp_path / "p.pt"))
    assert code == 2 and "this machine has 0 CUDA device(s)" in err  # before the missing space is noticed
    assert not (tmp_path / "p.pt").exists()


def test_users_datasets_and_loaders_are_taken_directly(tiny_space, small):
    train = TensorDataset(*_tensors(small.train))
    val = DataLoader(TensorDataset(*_tensors(small.val)), batch_size=16)  # its dataset is used
    pnet = _train(tiny_space, (train, val))
    assert len(pnet.history) == 1
    evaluator = PruningNetEvaluator(pnet, (DataLoader(train, batch_size=8), val), recal_batches=2, batch_size=32)
    assert sum(len(y) for _, y in evaluator.val) == len(small.val)
    assert 0 < evaluator.score(tiny_space.full())["score"] <= 1
    # Raw (images, labels) tensors work too, and give the same validation batches as the bundle.
    same = PruningNetEvaluator(pnet, {"train": train, "val": _tensors(small.val)}, recal_batches=0, batch_size=32)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(same.val, evaluator.val))


def test_users_data_with_another_class_count_is_refused_naming_both(tiny_space, small):
    seven = (TensorDataset(*_tensors(small.train, keep=7)), TensorDataset(*_tensors(small.val, keep=7)))
    for call in (lambda: _train(tiny_space, seven), lambda: PruningNetEvaluator(PruningNet(tiny_space), seven)):
        with pytest.raises(DataError, match="the model has 10 outputs but dataset user has 7 classes") as info:
            call()
        assert "\n" not in str(info.value) and "select_classes" in str(info.value)
    with pytest.raises(DataError, match="pass load_data"):
        _train(tiny_space, [1, 2, 3, 4])


@cuda
def test_training_and_scoring_on_cuda_match_the_cpu(tiny_space, small):
    torch.manual_seed(0)
    pnet = _train(tiny_space, small, device="cuda", amp=False)
    assert pnet.device.type == "cuda"
    assert all(t.is_cuda for t in pnet.gene_inputs.buffers())
    bound = pnet.generate(tiny_space.uniform(0.5))
    assert all(t.is_cuda for t in bound.kept.values())
    on_gpu = PruningNetEvaluator(pnet, small, recal_batches=2, batch_size=32)  # follows the PruningNet
    assert on_gpu.device.type == "cuda" and all(x.is_cuda for x in on_gpu.recal)
    archs = [tiny_space.uniform(0.3), tiny_space.sample(1), tiny_space.full()]
    gpu_scores = [on_gpu.score(a)["score"] for a in archs]
    cpu = PruningNetEvaluator(pnet, small, recal_batches=2, batch_size=32, device="cpu")
    cpu_scores = [cpu.score(a)["score"] for a in archs]
    assert gpu_scores == pytest.approx(cpu_scores, abs=1e-2)  # TF32 convolutions on the GPU
    model = pnet.export(archs[1], cpu.recalibrated(archs[1]))
    assert model_device(model).type == "cpu"


@cuda
def test_mixed_precision_training_on_cuda_resumes_on_the_cpu(tiny_space, small, tmp_path):
    ckpt = tmp_path / "pnet.pt"
    pnet = train_pruningnet(tiny_space, small, epochs=1, batch_size=32, n_random=1, device="cuda", amp=True,
                            checkpoint=ckpt)
    assert pnet.device.type == "cuda" and torch.isfinite(torch.tensor(pnet.history[0]["loss"]))
    resumed = train_pruningnet(tiny_space, small, epochs=2, batch_size=32, n_random=1, device="cpu", checkpoint=ckpt)
    assert resumed.device.type == "cpu" and [h["epoch"] for h in resumed.history] == [1, 2]
