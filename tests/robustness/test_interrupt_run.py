"""``nas-prune run`` SIGKILLed inside a stage: the re-run skips the finished stages and resumes the killed one."""

from __future__ import annotations

import json
import re

import pytest

from nas_prune.export import load_checkpoint, save_state_dict
from nas_prune.pipeline.stages import stage_names
from tests.pipeline.test_run import TINY
from tests.robustness._kill import checkpoint_field, cli, kill_when

SENTINEL = 0.123456789


@pytest.mark.slow
def test_run_survives_sigkill_inside_a_stage(tmp_path):
    tiny = list(TINY)
    tiny[tiny.index("--n-trials") + 1] = "4"  # fewer trials: the search is not what is tested here
    out = tmp_path / "run"
    args = ["run", *tiny, "--out", str(out)]
    ckpt = out / "gates.ckpt"
    # killed in the gates stage, after its first (ratio, seed) run was checkpointed
    assert kill_when(args, lambda: len(checkpoint_field(ckpt, "done", []) or []) >= 1, timeout=400)
    stages = json.loads((out / "stages.json").read_text())
    assert list(stages) == ["space", "teacher", "latency", "calibration", "budget"] and not (out / "gates.json").exists()
    teacher_before = (out / "teacher.pt").read_bytes()
    c = load_checkpoint(ckpt)
    n_done = len(c["done"])
    c["done"][0]["val_accuracy"] = SENTINEL  # mark the finished unit: it must be kept, not redone
    save_state_dict(c.pop("state_dict"), ckpt, **c)

    r = cli(*args, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    for stage in ("space", "teacher", "latency", "calibration", "budget"):
        assert re.search(rf"· {stage}\s+cached", r.stderr) and f"▶ {stage}\n" not in r.stderr  # not re-run
    assert "▶ gates" in r.stderr
    assert (out / "teacher.pt").read_bytes() == teacher_before
    gates = json.loads((out / "gates.json").read_text())
    assert gates["runs"][0]["val_accuracy"] == SENTINEL and n_done < len(gates["runs"])
    assert not ckpt.exists() and not (out / "pnet.ckpt").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert list(json.loads((out / "stages.json").read_text())) == stage_names()
    for who in ("teacher", "final"):
        for key in ("accuracy", "params", "flops", "measured_latency_ms"):
            assert isinstance(summary[who][key], (int, float)), (who, key)
    for rel in summary["artifacts"].values():
        assert (out / rel).exists(), rel
