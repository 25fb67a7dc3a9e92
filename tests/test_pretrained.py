"""The network the user already has: every accepted checkpoint layout, each refused one, a new classifier,
torchvision's named weights from a local hub cache, and the teacher stage that evaluates instead of training."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from nas_prune.data import Preprocess, load_data
from nas_prune.export import load_model, save_model
from nas_prune.pretrained import PretrainedWeightsError, load_weights, torchvision_weights
from nas_prune.space import ChannelSpace
from nas_prune.teacher import ChanceLevelError, chance_floor, check_above_chance, prepare_teacher, transfer_epochs
from tests.conftest import tiny_resnet

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(tiny_space, digits16, tmp_path_factory):
    """A tiny_resnet trained outside nas-prune's teacher stage (a plain loop), as a user would."""
    torch.manual_seed(0)
    model = tiny_resnet(10)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model.train()
    for epoch in range(8):
        for x, y in digits16.train.batches(64, shuffle=True, generator=torch.Generator().manual_seed(epoch)):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    return model.eval()


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        return torch.allclose(a.eval()(x), b.eval()(x), atol=1e-6)


LAYOUTS = {
    "plain state_dict": lambda sd: sd,
    "under state_dict": lambda sd: {"state_dict": sd, "epoch": 90},
    "training script": lambda sd: {"epoch": 12, "model": sd, "optimizer": {"lr": 0.1, "state": {}}, "best_acc1": 71.2},
    "model_state_dict": lambda sd: {"model_state_dict": sd},
    "ema only": lambda sd: {"ema": sd, "step": 1000},
    "DataParallel prefix": lambda sd: OrderedDict((f"module.{k}", v) for k, v in sd.items()),
    "torch.compile prefix": lambda sd: {"state_dict": {f"_orig_mod.{k}": v for k, v in sd.items()}},
    "DDP of a compiled model": lambda sd: {f"module._orig_mod.{k}": v for k, v in sd.items()},
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_every_usual_layout_loads(layout, trained, tiny_space, tmp_path):
    path = tmp_path / "net.pt"
    torch.save(LAYOUTS[layout](trained.state_dict()), path)
    model = tiny_space.build_model()
    report = load_weights(model, path, num_classes=10, space_id=tiny_space.id)
    assert _same(model, trained) and not report.replaced_classifier
    assert _same(load_model(tiny_space, path), trained)  # every command taking --teacher reads it too


def test_a_nas_prune_checkpoint_loads_and_brings_its_preprocessing(trained, tiny_space, tmp_path):
    path = tmp_path / "teacher.pt"
    save_model(trained, path, space_id=tiny_space.id, preprocess=Preprocess((0.3,), (0.4,)).to_json())
    model = tiny_space.build_model()
    report = load_weights(model, path, space_id=tiny_space.id)
    assert _same(model, trained) and report.preprocess.mean == (0.3,)


def test_refused_files_say_what_and_how_in_one_line(trained, tiny_space, tmp_path):
    cases = {}
    other = ChannelSpace.from_name("tests.conftest:tiny_resnet", input_size=16, num_classes=10, round_to=4)
    torch.save(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)).state_dict(), tmp_path / "other.pt")
    cases["other.pt"] = r"do not fit the model: missing keys .*unexpected keys 0\.weight"
    sd = trained.state_dict()
    sd["stem.0.weight"] = torch.zeros(4, 3, 3, 3)
    torch.save(sd, tmp_path / "shape.pt")
    cases["shape.pt"] = r"stem\.0\.weight is \[4, 3, 3, 3\] in the file but \[16, 3, 3, 3\] in the model"
    torch.save(trained, tmp_path / "pickled.pt")  # a whole pickled module runs code on load
    cases["pickled.pt"] = r"holds a pickled object .*save model\.state_dict\(\) instead"
    torch.save({"epoch": 3, "notes": "x"}, tmp_path / "empty.pt")
    cases["empty.pt"] = r"holds no state dict \(found: epoch, notes\)"
    save_model(trained, tmp_path / "foreign.pt", space_id=other.id)
    cases["foreign.pt"] = r"nas-prune model of space"
    save_model(trained, tmp_path / "pruned.pt", space_id=tiny_space.id, arch={"stem.0": 8})
    cases["pruned.pt"] = r"is a pruned nas-prune model: give the unpruned teacher's weights"
    cases["missing.pt"] = r"does not exist"
    for name, pattern in cases.items():
        with pytest.raises(PretrainedWeightsError, match=pattern) as err:
            load_weights(tiny_space.build_model(), tmp_path / name, num_classes=10, space_id=tiny_space.id)
        assert "\n" not in str(err.value), name


def test_a_classifier_for_other_classes_is_replaced_and_fine_tuned(trained, tiny_space, digits16, tmp_path):
    seven = trained.state_dict()  # trained features, a 7-class classifier (as a 1000-class ImageNet head on 10 classes)
    seven["fc.weight"], seven["fc.bias"] = seven["fc.weight"][:7], seven["fc.bias"][:7]
    torch.save(seven, tmp_path / "seven.pt")
    model = tiny_space.build_model()
    report = load_weights(model, tmp_path / "seven.pt", num_classes=10)
    assert report.file_classes == 7 and report.replaced_classifier == ["fc.weight", "fc.bias"]
    res = prepare_teacher(tiny_space, digits16, tmp_path / "teacher.pt", weights=tmp_path / "seven.pt", batch_size=64)
    assert res["epochs"] == transfer_epochs(len(digits16.train)) and res["lr"] == 0.005  # transfer, at the fine-tuning rate
    assert res["weights"]["replaced_classifier"] == ["fc.weight", "fc.bias"]
    assert res["val_accuracy"] > 0.5  # the new classifier learned the data's classes


def test_trained_weights_are_evaluated_not_trained_again(trained, tiny_space, digits16, tmp_path):
    from nas_prune.training import evaluate

    torch.save(trained.state_dict(), tmp_path / "net.pt")
    res = prepare_teacher(tiny_space, digits16, tmp_path / "teacher.pt", weights=tmp_path / "net.pt")
    assert res["epochs"] == 0 and res["history"] == [] and res["source"] == "trained weights"
    assert res["test_accuracy"] == pytest.approx(evaluate(trained, digits16.test))  # the user's own evaluation
    assert _same(load_model(tiny_space, tmp_path / "teacher.pt"), trained)
    ckpt = torch.load(tmp_path / "teacher.pt", weights_only=True)
    assert ckpt["preprocess"]["mean"] == [0.5] and ckpt["weights"] == str(tmp_path / "net.pt")
    tuned = prepare_teacher(tiny_space, digits16, tmp_path / "tuned.pt", weights=tmp_path / "net.pt", epochs=1)
    assert tuned["epochs"] == 1 and tuned["lr"] == 0.005 and len(tuned["history"]) == 1


def test_a_wrong_normalisation_is_caught_at_chance_level(trained, tiny_space, tmp_path):
    torch.save(trained.state_dict(), tmp_path / "net.pt")
    wrong = load_data("digits", input_size=16, preprocess=Preprocess((0.9,), (0.005,)))  # not what it was trained on
    with pytest.raises(ChanceLevelError, match=r"near chance .*preprocessing \(--mean/--std"):
        prepare_teacher(tiny_space, wrong, tmp_path / "teacher.pt", weights=tmp_path / "net.pt")
    assert not (tmp_path / "teacher.pt").exists()
    check_above_chance(0.9, 359, 10, what="x")
    with pytest.raises(ChanceLevelError):
        check_above_chance(0.14, 359, 10, what="x")  # within noise of 10 %
    # the floor a teacher trained from scratch is judged by too (the run warns below it: "it did not learn")
    assert chance_floor(300, 10) == pytest.approx(0.28)  # a fifth of the way from 10 % to 100 %
    assert chance_floor(20, 2) == pytest.approx(0.5 + 3 * (0.25 / 20) ** 0.5)  # few images: three SEs


def _fake_hub(tmp_path: Path, model: str, weights: str) -> Path:
    """A state dict of the right shapes under the file name torchvision gives ``weights`` (never downloaded)."""
    import torchvision

    w = torchvision.models.get_model_weights(model)[weights]
    path = tmp_path / "hub" / "checkpoints" / os.path.basename(w.url)
    path.parent.mkdir(parents=True)
    torch.save(torchvision.models.get_model(model, weights=None).state_dict(), path)
    return path


def test_torchvision_named_weights_come_from_the_local_cache_with_their_preprocessing(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(PretrainedWeightsError, match=r"never downloads\): put https://.*mobilenet_v3_small.* at "):
        torchvision_weights("mobilenet_v3_small", "IMAGENET1K_V1")
    file = _fake_hub(tmp_path, "mobilenet_v3_small", "IMAGENET1K_V1")
    named = torchvision_weights("mobilenet_v3_small", "DEFAULT")
    assert named.path == file and named.num_classes == 1000 and named.crop_size == 224
    assert named.preprocess.mean == (0.485, 0.456, 0.406) and named.preprocess.std == (0.229, 0.224, 0.225)
    assert named.preprocess.resize == 256
    from nas_prune.pipeline import RunConfig

    cfg = RunConfig(model="mobilenet_v3_small", weights="IMAGENET1K_V1")
    assert cfg.preprocess == named.preprocess and cfg.weights_file() == file and cfg.teacher_epochs is None
    assert RunConfig(model="mobilenet_v3_small", weights="IMAGENET1K_V1", mean="0.5").preprocess.mean == (0.5,)
    space = ChannelSpace.from_name("mobilenet_v3_small", input_size=32, num_classes=10)
    report = load_weights(space.build_model(), file, num_classes=10)
    assert report.file_classes == 1000 and report.replaced_classifier == ["classifier.3.weight", "classifier.3.bias"]
    with pytest.raises(Exception, match=r"has the weights DEFAULT, IMAGENET1K_V1"):
        torchvision_weights("mobilenet_v3_small", "IMAGENET21K")


def _cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "NAS_PRUNE_PROGRESS": "0", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "nas_prune", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=600)


def test_the_command_line_refuses_bad_weights_in_one_line_exit_2(trained, tmp_path):
    torch.save(trained, tmp_path / "pickled.pt")
    for args, pattern in [
        (["--teacher", str(tmp_path / "nope.pt")], "teacher weights .* do not exist"),
        (["--teacher", str(tmp_path / "pickled.pt")], "save model.state_dict"),
        (["--mean", "0.1,0.2"], "one number for every channel or one per channel"),
        (["--std", "0"], "every value must be positive"),
        (["--model", "mobilenet_v2", "--weights", "IMAGENET1K_V9"], "has the weights DEFAULT"),
    ]:
        base = ["run", "--model", "tests.conftest:tiny_resnet", "--input-size", "16", "--out", str(tmp_path / "run")]
        r = _cli(*base, *args)
        assert r.returncode == 2, (args, r.stderr[-500:])
        lines = [x for x in r.stderr.strip().splitlines() if x.strip()]
        assert len(lines) == 1 and __import__("re").search(pattern, lines[0]), (args, r.stderr)
    assert not (tmp_path / "run" / "teacher.pt").exists()


@pytest.mark.slow
def test_run_on_the_users_trained_network_with_its_preprocessing(trained, tiny_space, tmp_path):
    """nas-prune run --teacher net.pt --mean/--std: the teacher is evaluated (not trained), every stage
    uses the network's preprocessing, and the exported networks carry it."""
    import onnxruntime as ort

    torch.save(trained.state_dict(), tmp_path / "net.pt")
    out = tmp_path / "run"
    r = _cli("run", "--model", "tests.conftest:tiny_resnet", "--input-size", "16", "--teacher", str(tmp_path / "net.pt"),
             "--mean", "0.5", "--std", "0.25", "--gate-epochs", "1", "--pnet-epochs", "1", "--n-trials", "6",
             "--distill-epochs", "1", "--profile", "--validate-n", "2", "--budget", "1ms", "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    stages = json.loads((out / "stages.json").read_text())
    teacher = stages["teacher"]["result"]
    assert teacher["source"] == "trained weights" and teacher["epochs"] == 0
    config = json.loads((out / "config.json").read_text())
    assert config["teacher"] == str(tmp_path / "net.pt") and config["preprocess"]["source"] == "--mean/--std"
    for onnx in (out / "teacher.onnx", out / "distill" / "model.onnx"):
        meta = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
        assert json.loads(meta["preprocess"])["std"] == [0.25]
    digits = load_data("digits", input_size=16)
    from nas_prune.training import evaluate

    summary = json.loads((out / "summary.json").read_text())
    assert summary["teacher"]["accuracy"] == pytest.approx(evaluate(trained, digits.test))


@pytest.mark.slow
def test_run_with_torchvision_weights_replaces_the_classifier_and_uses_their_preprocessing(tmp_path):
    """--weights from a local hub cache on 10-class data: a 1000-class head is replaced and fine-tuned
    (transfer), and the weights' ImageNet mean/std are the ones every stage uses."""
    _fake_hub(tmp_path, "mobilenet_v3_small", "IMAGENET1K_V1")
    out = tmp_path / "run"
    env_home = {"TORCH_HOME": str(tmp_path)}
    space, table = tmp_path / "space.json", tmp_path / "table.json"  # a small table: profiling is not tested here
    assert _cli("space", "mobilenet_v3_small", "-o", str(space)).returncode == 0
    r = _cli("profile", "--space", str(space), "--nets", "6", "--rounds", "2", "--runs-per-round", "5", "-o", str(table))
    assert r.returncode == 0, r.stderr[-1500:]
    args = ["run", "--model", "mobilenet_v3_small", "--weights", "IMAGENET1K_V1", "--teacher-epochs", "1",
            "--gate-steps", "60", "--pnet-epochs", "1", "--n-trials", "4", "--distill-epochs", "1", "--table",
            str(table), "--validate-n", "2", "--finalists", "2", "--budget", "1x", "--out", str(out)]
    env = {**os.environ, "NAS_PRUNE_PROGRESS": "0", "PYTHONPATH": str(ROOT), **env_home}
    r = subprocess.run([sys.executable, "-m", "nas_prune", *args], capture_output=True, text=True, env=env, cwd=ROOT,
                       timeout=1200)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "classifier for 1000 classes was replaced" in r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["preprocess"]["mean"] == [0.485, 0.456, 0.406] and summary["preprocess"]["resize"] == 256
    assert summary["teacher"]["weights"]["file_classes"] == 1000 and summary["teacher"]["epochs"] == 1


def test_stage_commands_take_the_users_weights_and_carry_the_preprocessing(trained, tiny_space_file, tmp_path):
    """nas-prune train --weights evaluates them and records the preprocessing; pruningnet train and distill take
    the plain state dict as --teacher and, without --mean/--std, the teacher checkpoint's preprocessing."""
    from nas_prune.pruningnet import PruningNet

    torch.save(trained.state_dict(), tmp_path / "net.pt")
    r = _cli("train", "--space", str(tiny_space_file), "--weights", str(tmp_path / "net.pt"), "--mean", "0.5",
             "--std", "0.25", "-o", str(tmp_path / "teacher.pt"))
    assert r.returncode == 0, r.stderr[-1500:]
    assert json.loads(r.stdout.strip().splitlines()[-1])["test_accuracy"] > 0.5
    assert torch.load(tmp_path / "teacher.pt", weights_only=True)["preprocess"]["source"] == "--mean/--std"
    r = _cli("pruningnet", "train", "--space", str(tiny_space_file), "--teacher", str(tmp_path / "teacher.pt"),
             "--epochs", "1", "--train-subset", "200", "-o", str(tmp_path / "pnet.pt"))
    assert r.returncode == 0, r.stderr[-1500:]
    assert PruningNet.load(tmp_path / "pnet.pt").preprocess.source == "--mean/--std"  # the teacher's, recorded
    r = _cli("pruningnet", "train", "--space", str(tiny_space_file), "--teacher", str(tmp_path / "net.pt"),
             "--epochs", "1", "--train-subset", "200", "--mean", "0.4", "-o", str(tmp_path / "pnet2.pt"))
    assert r.returncode == 0, r.stderr[-1500:]
    assert PruningNet.load(tmp_path / "pnet2.pt").preprocess.mean == (0.4,)


def test_torchvisions_legacy_densenet_names_are_renamed():
    import torchvision

    from nas_prune.pretrained import extract_state_dict

    own = {k: v for k, v in torchvision.models.densenet121(weights=None, num_classes=10).state_dict().items()
           if not k.endswith("num_batches_tracked")}  # the published files predate it
    legacy = {k.replace("norm1", "norm.1").replace("conv2", "conv.2"): v for k, v in own.items()}
    assert legacy.keys() != own.keys()
    renamed, _ = extract_state_dict(legacy, "densenet121.pth")
    assert renamed.keys() == own.keys()


def test_the_users_file_is_read_once_per_run(tmp_path, monkeypatch):
    """RunConfig checks --teacher when the settings are parsed; the teacher stage's load takes what it read."""
    import torch

    import nas_prune.pretrained as pretrained
    from nas_prune.pipeline import RunConfig
    from tests.conftest import tiny_resnet

    path = tmp_path / "net.pt"
    torch.save(tiny_resnet().state_dict(), path)
    loads = []
    real = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: loads.append(a[0]) or real(*a, **k))
    RunConfig(model="tests.conftest:tiny_resnet", teacher=path)
    pretrained.load_weights(tiny_resnet(), path)
    assert loads == [path]
    pretrained.load_weights(tiny_resnet(), path)  # taken: a later load reads the file again
    assert loads == [path, path] and not pretrained._KEPT
