from __future__ import annotations

import json

from nas_prune.export import load_checkpoint, load_model
from nas_prune.space import ChannelSpace
from tests.robustness._kill import cli, kill_when


def test_teacher_training_survives_sigkill(tmp_path, tiny_space_file):
    out = tmp_path / "teacher.pt"
    partial = tmp_path / "teacher.pt.partial"
    args = ["train", "--space", str(tiny_space_file), "--data", "digits", "--epochs", "4", "-o", str(out)]

    def two_epochs_done() -> bool:
        if not partial.exists():
            return False
        try:
            return load_checkpoint(partial)["epoch"] >= 2
        except Exception:
            return False

    assert kill_when(args, two_epochs_done), "training finished before it could be killed"
    assert not out.exists()
    assert load_checkpoint(partial)["epoch"] >= 2  # the checkpoint on disk is whole
    r = cli(*args)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    ckpt = load_checkpoint(out)
    # resumed, not restarted: the history has one record per epoch, no more
    assert [h["epoch"] for h in ckpt["history"]] == [1, 2, 3, 4]
    model = load_model(ChannelSpace.load(tiny_space_file), out)
    assert 0.0 <= result["test_accuracy"] <= 1.0 and model is not None
    assert not partial.exists()
