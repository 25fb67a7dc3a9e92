"""SIGKILL every long job part-way, run the same command again: it resumes and ends as an uninterrupted run.

Teacher training is in test_interrupt_train.py; ``profile`` (tests/latency/test_cli.py) and
``search`` (tests/search/test_cli_search.py) have their own SIGKILL tests. To prove a restart
*resumes* (rather than silently redoing the work), the test marks a finished unit inside the
checkpoint left by the kill (a sentinel value in its history); the mark must reach the final file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nas_prune.export import load_checkpoint, save_state_dict
from tests.robustness._kill import checkpoint_field, cli, kill_when

SENTINEL = 0.123456789


def _mark(path: Path, mutate) -> None:  # noqa: ANN001
    """Rewrite a checkpoint (as nas-prune would: weights-only, atomic) after ``mutate(ckpt)``."""
    ckpt = load_checkpoint(path)
    mutate(ckpt)
    save_state_dict(ckpt.pop("state_dict"), path, **ckpt)


def _same_tensors(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_gates_survive_sigkill(tmp_path, tiny_space_file):
    def args(out: Path) -> list[str]:
        return ["gates", "--space", str(tiny_space_file), "--data", "digits", "--ratios", "0.3,0.6", "--epochs", "2",
                "--gamma", "50", "--lr", "0.05", "--batch-size", "32", "--train-subset", "128", "-o", str(out)]

    ref = tmp_path / "ref.json"
    assert cli(*args(ref)).returncode == 0
    out = tmp_path / "gates.json"
    partial = tmp_path / "gates.json.partial"
    assert kill_when(args(out), lambda: len(checkpoint_field(partial, "done", []) or []) >= 1)
    assert not out.exists()
    done = checkpoint_field(partial, "done")
    assert 1 <= len(done) < 2  # one (ratio, seed) run finished, the other not
    _mark(partial, lambda c: c["done"][0].__setitem__("val_accuracy", SENTINEL))
    r = cli(*args(out))
    assert r.returncode == 0, r.stderr
    assert not partial.exists()
    got, want = json.loads(out.read_text()), json.loads(ref.read_text())
    assert got["runs"][0]["val_accuracy"] == SENTINEL  # the finished run was kept, not redone
    got["runs"][0]["val_accuracy"] = want["runs"][0]["val_accuracy"]
    assert got == want  # otherwise the same file as the uninterrupted run


@pytest.mark.slow
def test_pruningnet_training_survives_sigkill(tmp_path, tiny_space_file):
    def args(out: Path) -> list[str]:
        return ["pruningnet", "train", "--space", str(tiny_space_file), "--data", "digits", "--epochs", "3",
                "--batch-size", "32", "--train-subset", "128", "-o", str(out)]

    ref = tmp_path / "ref.pt"
    assert cli(*args(ref)).returncode == 0
    out = tmp_path / "pnet.pt"
    assert kill_when(args(out), lambda: (checkpoint_field(out, "epoch", 0) or 0) >= 1)
    epoch = checkpoint_field(out, "epoch")
    assert 1 <= epoch < 3  # killed between epochs: at most the running epoch is lost
    _mark(out, lambda c: c["history"][0].__setitem__("loss", SENTINEL))
    r = cli(*args(out))
    assert r.returncode == 0, r.stderr
    got, want = load_checkpoint(out), load_checkpoint(ref)
    assert [h["epoch"] for h in got["history"]] == [1, 2, 3]
    assert got["history"][0]["loss"] == SENTINEL  # epoch 1 came from the checkpoint
    assert got["history"][1:] == want["history"][1:]  # deterministic: the same later epochs
    assert _same_tensors(got["state_dict"], want["state_dict"])
    assert json.loads(r.stdout)["epochs"] == 3


@pytest.mark.slow
def test_distill_survives_sigkill(tmp_path, tiny_space_file, tiny_space):
    teacher = tmp_path / "teacher.pt"
    r = cli("train", "--space", str(tiny_space_file), "--data", "digits", "--epochs", "1", "--train-subset", "128",
            "-o", str(teacher))
    assert r.returncode == 0, r.stderr
    arch = tmp_path / "arch.json"
    tiny_space.uniform(0.5).save(arch)

    def args(out: Path) -> list[str]:
        return ["distill", "--space", str(tiny_space_file), "--arch", str(arch), "--teacher", str(teacher),
                "--data", "digits", "--epochs", "3", "--train-subset", "128", "-o", str(out)]

    ref = tmp_path / "ref"
    assert cli(*args(ref)).returncode == 0
    out = tmp_path / "student"
    ckpt = out / "checkpoint.pt"
    assert kill_when(args(out), lambda: (checkpoint_field(ckpt, "epoch", 0) or 0) >= 1)
    assert not (out / "metrics.json").exists()
    assert 1 <= checkpoint_field(ckpt, "epoch") < 3
    _mark(ckpt, lambda c: c["history"][0].__setitem__("val_accuracy", SENTINEL))
    r = cli(*args(out))
    assert r.returncode == 0, r.stderr
    got, want = json.loads((out / "metrics.json").read_text()), json.loads((ref / "metrics.json").read_text())
    assert {p.name for p in out.iterdir()} == {p.name for p in ref.iterdir()}
    assert [h["epoch"] for h in got["history"]] == [1, 2, 3]
    assert got["history"][0]["val_accuracy"] == SENTINEL
    for a, b in zip(got["history"][1:], want["history"][1:]):
        assert a["loss"] == b["loss"] and a["val_accuracy"] == b["val_accuracy"]
    assert got["student"]["test_accuracy"] == want["student"]["test_accuracy"]
    assert _same_tensors(load_checkpoint(out / "model.pt")["state_dict"], load_checkpoint(ref / "model.pt")["state_dict"])
