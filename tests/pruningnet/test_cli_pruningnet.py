from __future__ import annotations

import json

import pytest

from nas_prune.export import load_checkpoint, load_model
from nas_prune.space import ChannelSpace
from tests.conftest import run_main as cli


@pytest.mark.slow
def test_train_resume_eval_export(tiny_space, tiny_space_file, tmp_path, capsys):
    pnet = tmp_path / "pnet.pt"
    common = ("--space", str(tiny_space_file), "--data", "digits", "--train-subset", "300", "-o", str(pnet))
    code, out, err = cli(capsys, "pruningnet", "train", *common, "--epochs", "1")
    assert code == 0, err
    assert json.loads(out)["epochs"] == 1
    code, out, err = cli(capsys, "pruningnet", "train", *common, "--epochs", "2")  # resumes
    assert code == 0, err
    ckpt = load_checkpoint(pnet)
    assert ckpt["epoch"] == 2 and len(ckpt["history"]) == 2

    arch = tiny_space.sample(2)
    arch_file = arch.save(tmp_path / "arch.json")
    code, out, err = cli(capsys, "pruningnet", "eval", "--pnet", str(pnet), "--space", str(tiny_space_file),
                         "--arch", str(arch_file), "--data", "digits", "--recal-batches", "3", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert set(result) == {"score", "loss", "loss_se", "score_se", "accuracy", "seconds"}
    assert 0 <= result["accuracy"] <= 1 and 0 < result["score"] <= 1

    model_file = tmp_path / "model.pt"
    code, out, err = cli(capsys, "pruningnet", "export", "--pnet", str(pnet), "--arch", str(arch_file),
                         "--data", "digits", "--recal-batches", "3", "-o", str(model_file))
    assert code == 0, err
    model = load_model(tiny_space, model_file)
    shapes = tiny_space.layer_channels(arch)
    assert (model.head[0].in_channels, model.head[0].out_channels) == shapes["head.0"]
    assert model(tiny_space.example_input(2)).shape == (2, 10)


def test_errors_are_one_line(tiny_space, tiny_space_file, tmp_path, capsys):
    from nas_prune.pruningnet import PruningNet

    pnet = PruningNet(tiny_space).save(tmp_path / "pnet.pt")
    other = ChannelSpace.from_name("tests.conftest:tiny_resnet", input_size=16, num_classes=10, round_to=4)
    other_file = other.save(tmp_path / "other.json")
    code, _, err = cli(capsys, "pruningnet", "eval", "--pnet", str(pnet), "--space", str(other_file),
                       "--arch", "full", "--json")
    assert code == 2 and "is for space" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli(capsys, "pruningnet", "eval", "--pnet", str(tmp_path / "missing.pt"), "--arch", "full")
    assert code == 2 and "does not exist" in err
    code, _, err = cli(capsys, "pruningnet", "export", "--pnet", str(pnet), "--arch", "uniform:2", "-o",
                       str(tmp_path / "m.pt"))
    assert code == 2 and "ratio" in err
    foreign = other.full().save(tmp_path / "foreign.json")
    code, _, err = cli(capsys, "pruningnet", "export", "--pnet", str(pnet), "--arch", str(foreign), "-o",
                       str(tmp_path / "m.pt"))
    assert code == 2 and "space" in err
    code, _, err = cli(capsys, "pruningnet", "train", "--space", str(other_file), "--epochs", "1",
                       "-o", str(pnet))
    assert code == 2 and "is for space" in err
