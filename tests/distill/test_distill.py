from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch.utils.data import Dataset

from nas_prune.data import DataBundle, ImageArrays
from nas_prune.distill import DistillConfig, distill, init_student
from nas_prune.errors import NasPruneError
from nas_prune.export import load_model
from nas_prune.space import Architecture, materialize
from nas_prune.training import evaluate

FAST = DistillConfig(batch_size=32, dafl_batch_size=32, dafl_steps_per_epoch=3)


class NoTrainingImages(Dataset):
    """A training split that fails the test on any use."""

    def __len__(self) -> int:
        raise AssertionError("DAFL asked for the size of the training split")

    def __getitem__(self, idx: int):
        raise AssertionError("DAFL read a training image")

    def __getattr__(self, name: str):
        raise AssertionError(f"DAFL touched the training split ({name})")


@pytest.mark.slow
def test_kd_reduces_the_gap_to_the_teacher(tiny_space, tiny_teacher, digits16, tmp_path):
    """A small, weakly labelled problem: 300 images, 60% of their labels replaced by random classes.

    Both students start from the teacher's pruned weights and train equally long; the one that
    learns from the teacher's soft targets (KD) must end closer to the teacher than the one that
    learns from the labels alone (mean of 2 seeds, margin 5 points; measured: ~20 points).
    """
    train = digits16.train.subset(torch.arange(300))
    g = torch.Generator().manual_seed(0)
    labels = train.labels.clone()
    noisy = torch.rand(300, generator=g) < 0.6
    labels[noisy] = torch.randint(0, 10, (int(noisy.sum()),), generator=g)
    small = DataBundle("digits", ImageArrays(train.images, labels, 10), digits16.val.subset(torch.arange(60)),
                       digits16.test, 10, 16)
    teacher_acc = evaluate(tiny_teacher, small.test)
    assert teacher_acc > 0.8
    arch = tiny_space.uniform(0.5)
    gaps = {}
    for method in ("none", "kd"):
        accs = [distill(tiny_space, arch, tiny_teacher, small, method=method, init="teacher", epochs=6, seed=s,
                        out_dir=tmp_path / f"{method}{s}", measure_latency=False,
                        config=DistillConfig(batch_size=20))["student"]["test_accuracy"] for s in (0, 1)]
        gaps[method] = teacher_acc - sum(accs) / len(accs)
    assert gaps["kd"] < gaps["none"] - 0.05, gaps


def test_dafl_reads_no_training_image(tiny_space, tiny_teacher, digits_small, tmp_path):
    bundle = DataBundle("digits", NoTrainingImages(), digits_small.val, digits_small.test, 10, 16)
    metrics = distill(tiny_space, tiny_space.uniform(0.5), tiny_teacher, bundle, method="dafl", init="scratch",
                      epochs=2, out_dir=tmp_path, measure_latency=False, config=FAST)
    assert [r["epoch"] for r in metrics["history"]] == [1, 2]
    assert 0.0 <= metrics["student"]["test_accuracy"] <= 1.0
    assert (tmp_path / "model.pt").exists() and (tmp_path / "model.onnx").exists()


def test_outputs_onnx_and_reload(tiny_space, tiny_teacher, digits_small, tmp_path):
    digits16 = digits_small
    from nas_prune.latency import build_table

    arch = tiny_space.uniform(0.5)
    table = tmp_path / "table.json"
    build_table(tiny_space, nets=8, rounds=3, runs_per_round=5, warmup=2, output=table)
    metrics = distill(tiny_space, arch, tiny_teacher, digits16, method="cckd", init="teacher", epochs=1,
                      out_dir=tmp_path, table=table, budget_ms=1000.0, config=FAST)
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk == json.loads(json.dumps(metrics))
    assert Architecture.load(tmp_path / "arch.json").channels == tiny_space.validate(arch)
    # reload reproduces the accuracy
    model = load_model(tiny_space, tmp_path / "model.pt")
    assert evaluate(model, digits16.test) == metrics["student"]["test_accuracy"]
    # the ONNX file computes what the PyTorch model computes
    x = next(iter(torch.utils.data.DataLoader(digits16.test, batch_size=16)))[0]
    sess = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    (onnx_out,) = sess.run(None, {"input": x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(onnx_out, model(x).numpy(), rtol=1e-4, atol=1e-4)
    # metrics: counts, measured latency of both, budget
    s, t = metrics["student"], metrics["teacher"]
    assert s["params"] < t["params"] and s["flops"] < t["flops"]
    assert s["latency_ms"] > 0 and t["latency_ms"] > 0 and metrics["speedup"] == pytest.approx(t["latency_ms"] / s["latency_ms"])
    assert metrics["budget_holds"] is True and metrics["budget_holds_predicted"] is True
    assert metrics["latency"]["statistic"] == "round_ms"  # the statistic the table predicts
    assert 0 < metrics["predicted_ms"] < 1000 and metrics["predicted_ms_now"] > 0
    assert len(metrics["history"]) == 1 and {"loss", "val_accuracy"} <= set(metrics["history"][0])


def test_resume_after_interrupt_gives_the_same_model(tiny_space, tiny_teacher, digits_small, tmp_path):
    digits16 = digits_small
    arch = tiny_space.uniform(0.5)
    kwargs = dict(method="cckd", init="scratch", epochs=2, seed=3, measure_latency=False, config=FAST)

    def interrupt(record):
        if record["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        distill(tiny_space, arch, tiny_teacher, digits16, out_dir=tmp_path / "a", on_epoch=interrupt, **kwargs)
    assert not (tmp_path / "a" / "model.pt").exists()
    resumed = distill(tiny_space, arch, tiny_teacher, digits16, out_dir=tmp_path / "a", **kwargs)
    straight = distill(tiny_space, arch, tiny_teacher, digits16, out_dir=tmp_path / "b", **kwargs)
    def timeless(history):  # the wall time of an epoch is the one field that may differ
        return [{k: v for k, v in r.items() if k != "seconds"} for r in history]

    assert timeless(resumed["history"]) == timeless(straight["history"])
    a = torch.load(tmp_path / "a" / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "b" / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(NasPruneError, match="another distillation run"):
        distill(tiny_space, arch, tiny_teacher, digits16, out_dir=tmp_path / "a", **{**kwargs, "seed": 4})


def test_initialisations(tiny_space, tiny_teacher, tmp_path):
    arch = tiny_space.uniform(0.5)
    from_teacher = init_student(tiny_space, arch, tiny_teacher, "teacher")
    expected = materialize(tiny_teacher, arch, space=tiny_space).state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in from_teacher.state_dict().items())
    scratch = init_student(tiny_space, arch, tiny_teacher, "scratch")
    assert not torch.equal(scratch.stem[0].weight, from_teacher.stem[0].weight)
    with pytest.raises(NasPruneError, match="unknown init"):
        init_student(tiny_space, arch, tiny_teacher, "magic")


def test_gates_init_keeps_the_gated_channels(tiny_space, tiny_teacher, tmp_path):
    gates_mod = pytest.importorskip("nas_prune.gates", reason="the gates stage is not installed")
    widths = {g.name: g.width for g in tiny_space.searchable_genes}
    # gate value grows with the channel index: the last channels are the most important
    run = gates_mod.GateRun(ratio=0.5, seed=0, gates={k: tuple((i + 1) / w for i in range(w)) for k, w in widths.items()},
                            val_accuracy=0.5, nonzero_fraction=1.0, epoch=1, met_ratio=False)
    path = tmp_path / "gates.json"
    gates_mod.Gates(space_id=tiny_space.id, widths=widths, runs=(run,)).save(path)
    arch = tiny_space.uniform(0.5)
    student = init_student(tiny_space, arch, tiny_teacher, f"gates:{path}")
    keep = tiny_space.validate(arch)["stem.0"]
    w = tiny_teacher.stem[0].weight
    assert torch.equal(student.stem[0].weight, w[w.shape[0] - keep:])


def test_pnet_init_uses_generated_weights(tiny_space, tiny_teacher, tmp_path):
    pn = pytest.importorskip("nas_prune.pruningnet", reason="the PruningNet stage is not installed")
    torch.manual_seed(0)
    net = pn.PruningNet(tiny_space)
    net.save(tmp_path / "pnet.pt")
    arch = tiny_space.uniform(0.5)
    student = init_student(tiny_space, arch, tiny_teacher, f"pnet:{tmp_path / 'pnet.pt'}")
    expected = net.export(arch).state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in student.state_dict().items())


def test_bad_teacher_checkpoint_is_one_line_error(tiny_space, digits_small, tmp_path):
    digits16 = digits_small
    bad = tmp_path / "teacher.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(NasPruneError) as err:
        distill(tiny_space, tiny_space.uniform(0.5), bad, digits16, out_dir=tmp_path / "o", epochs=1)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(NasPruneError, match="unknown distillation method"):
        distill(tiny_space, tiny_space.uniform(0.5), bad, digits16, method="magic", out_dir=tmp_path / "o")


def test_pnet_init_recalibrates_batchnorm_on_given_batches(tiny_space, tiny_teacher, digits_small, tmp_path):
    """MetaPruning's BN recalibration: the student starts with the candidate's own statistics, not 0/1."""
    pn = pytest.importorskip("nas_prune.pruningnet", reason="the PruningNet stage is not installed")
    from nas_prune.data import batches

    torch.manual_seed(0)
    net = pn.PruningNet(tiny_space)
    net.save(tmp_path / "pnet.pt")
    arch = tiny_space.uniform(0.5)
    recal = [x for x, _ in batches(digits_small.train, 32, shuffle=True, seed=0)][:3]
    student = init_student(tiny_space, arch, tiny_teacher, f"pnet:{tmp_path / 'pnet.pt'}", recal=recal)
    expected = net.export(arch, net.recalibrate(net.generate(arch), recal)).state_dict()
    assert all(torch.allclose(v.float(), expected[k].float()) for k, v in student.state_dict().items())
    means = [v for k, v in student.state_dict().items() if k.endswith("running_mean")]
    assert means and any(m.abs().sum() > 0 for m in means)  # not the reset statistics


def test_dafl_bn_reads_no_training_image_and_records_its_terms(tiny_space, tiny_teacher, digits_small, tmp_path):
    bundle = DataBundle("digits", NoTrainingImages(), digits_small.val, digits_small.test, 10, 16)
    metrics = distill(tiny_space, tiny_space.uniform(0.5), tiny_teacher, bundle, method="dafl-bn", init="teacher",
                      epochs=2, out_dir=tmp_path, measure_latency=False, config=FAST)
    first, last = metrics["history"]
    assert [first["steps"], last["steps"]] == [3, 6] and last["seconds"] >= first["seconds"] > 0
    for key in ("g_one_hot", "g_activation", "g_info_entropy", "g_bn_stats", "g_total", "g_classes"):
        assert key in last
    assert last["g_bn_stats"] > 0
    assert not any(m._forward_hooks for m in tiny_teacher.modules())  # the BN hooks are gone after the run


class _Interrupt(Exception):
    pass


@pytest.mark.parametrize("method", ["dafl", "dafl-bn"])
def test_data_free_resume_continues_the_step_count_and_matches_an_uninterrupted_run(
        method, tiny_space, tiny_teacher, digits_small, tmp_path):
    bundle = DataBundle("digits", NoTrainingImages(), digits_small.val, digits_small.test, 10, 16)
    kwargs = dict(method=method, init="teacher", epochs=3, measure_latency=False, config=FAST)

    def stop_after_first(record):
        if record["epoch"] == 1:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        distill(tiny_space, tiny_space.uniform(0.5), tiny_teacher, bundle, out_dir=tmp_path / "cut",
                on_epoch=stop_after_first, **kwargs)
    seen: list[int] = []
    resumed = distill(tiny_space, tiny_space.uniform(0.5), tiny_teacher, bundle, out_dir=tmp_path / "cut",
                      on_epoch=lambda r: seen.append(r["steps"]), **kwargs)
    whole = distill(tiny_space, tiny_space.uniform(0.5), tiny_teacher, bundle, out_dir=tmp_path / "whole", **kwargs)
    assert seen == [6, 9]  # epochs 2 and 3 only, counting on from the checkpoint's 3 steps
    assert [r["steps"] for r in resumed["history"]] == [3, 6, 9]
    assert [r["loss"] for r in resumed["history"]] == [r["loss"] for r in whole["history"]]
    a = load_model(tiny_space, tmp_path / "cut" / "model.pt").state_dict()
    b = load_model(tiny_space, tmp_path / "whole" / "model.pt").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_checkpoint_that_does_not_fit_the_modules_is_refused_with_the_fix(tiny_space, tiny_teacher, digits_small,
                                                                             tmp_path, monkeypatch):
    from nas_prune.distill._dafl_bn import DAFLBNMethod

    bundle = DataBundle("digits", NoTrainingImages(), digits_small.val, digits_small.test, 10, 16)
    kwargs = dict(method="dafl-bn", init="teacher", epochs=2, measure_latency=False, config=FAST, out_dir=tmp_path)

    def stop(record):
        raise _Interrupt

    with pytest.raises(_Interrupt):
        distill(tiny_space, tiny_space.uniform(0.5), tiny_teacher, bundle, on_epoch=stop, **kwargs)
    monkeypatch.setattr(DAFLBNMethod, "affine_output", False)  # same settings, other modules (an older version)
    with pytest.raises(NasPruneError, match="delete it to start this distillation over"):
        distill(tiny_space, tiny_space.uniform(0.5), tiny_teacher, bundle, **kwargs)


def test_the_best_validation_epoch_is_kept(tiny_space, tiny_teacher, digits_small, tmp_path):
    metrics = distill(tiny_space, tiny_space.uniform(0.5), tiny_teacher, digits_small, method="kd", init="scratch",
                      epochs=3, out_dir=tmp_path, measure_latency=False, config=FAST)
    vals = [r["val_accuracy"] for r in metrics["history"]]
    best = max(range(len(vals)), key=lambda i: (vals[i], i))  # ties: the later epoch
    assert metrics["kept"] == {"epoch": best + 1, "rule": "best validation accuracy", "stopped_early": False}
    assert metrics["student"]["val_accuracy"] == pytest.approx(vals[best])
    model = load_model(tiny_space, tmp_path / "model.pt")  # the saved model is the kept epoch
    assert evaluate(model, digits_small.val) == pytest.approx(vals[best])


def test_patience_stops_when_validation_stops_rising_and_resumes_stopped(tiny_space, tiny_teacher, digits_small,
                                                                          tmp_path, monkeypatch):
    import nas_prune.distill._run as run_module

    script = iter([0.5, 0.6, 0.55, 0.6, 0.7, 0.8])  # rises at epoch 2; epoch 4 ties it (kept: later), no rise since
    monkeypatch.setattr(run_module, "_val_accuracy", lambda *a: next(script))
    kwargs = dict(method="kd", init="teacher", epochs=6, measure_latency=False,
                  config=DistillConfig(batch_size=32, patience=2))
    metrics = distill(tiny_space, tiny_space.uniform(0.5), tiny_teacher, digits_small, out_dir=tmp_path, **kwargs)
    assert [r["val_accuracy"] for r in metrics["history"]] == [0.5, 0.6, 0.55, 0.6]
    assert metrics["kept"] == {"epoch": 4, "rule": "best validation accuracy", "stopped_early": True}
    (tmp_path / "metrics.json").unlink()
    again = distill(tiny_space, tiny_space.uniform(0.5), tiny_teacher, digits_small, out_dir=tmp_path, **kwargs)
    assert len(again["history"]) == 4 and again["kept"] == metrics["kept"]  # resumed: no epoch after the stop
    assert next(script) == 0.7  # and no epoch was trained or evaluated again


def test_data_free_methods_keep_the_last_epoch(tiny_space, tiny_teacher, digits_small, tmp_path):
    bundle = DataBundle("digits", NoTrainingImages(), digits_small.val, digits_small.test, 10, 16)
    metrics = distill(tiny_space, tiny_space.uniform(0.5), tiny_teacher, bundle, method="dafl", init="scratch",
                      epochs=2, out_dir=tmp_path, measure_latency=False, config=FAST)
    assert metrics["kept"] == {"epoch": 2, "rule": "last epoch", "stopped_early": False}


def test_default_epochs_of_a_data_free_finish_never_size_the_training_split(tiny_space, tiny_teacher, digits_small,
                                                                          tmp_path, monkeypatch):
    from nas_prune.distill import _schedule

    monkeypatch.setattr(_schedule, "DATA_FREE_STEPS", 2 * FAST.dafl_steps_per_epoch)
    bundle = DataBundle("digits", NoTrainingImages(), digits_small.val, digits_small.test, 10, 16)
    metrics = distill(tiny_space, tiny_space.uniform(0.5), tiny_teacher, bundle, method="dafl", init="scratch",
                      out_dir=tmp_path, measure_latency=False, config=FAST)  # epochs: the default
    assert metrics["epochs"] == 2 and len(metrics["history"]) == 2
