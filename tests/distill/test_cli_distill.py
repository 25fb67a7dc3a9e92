from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nas_prune.export import save_model

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NAS_PRUNE_PROGRESS": "0", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "nas_prune", *args], capture_output=True, text=True, cwd=ROOT, env=env)


@pytest.mark.slow
def test_distill_command_writes_outputs(tiny_space, tiny_space_file, tiny_teacher, tmp_path):
    teacher = tmp_path / "teacher.pt"
    save_model(tiny_teacher, teacher, space_id=tiny_space.id)
    arch = tmp_path / "arch.json"
    tiny_space.uniform(0.5).save(arch)
    out = tmp_path / "out"
    r = run("distill", "--space", str(tiny_space_file), "--arch", str(arch), "--teacher", str(teacher),
            "--data", "digits", "--method", "kd", "--init", "teacher", "--epochs", "1", "--budget-ms", "1000", "-o", str(out))
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["budget_holds"] is True and summary["speedup"] > 0
    assert summary["kept"] == {"epoch": 1, "rule": "best validation accuracy", "stopped_early": False}
    for name in ("model.pt", "arch.json", "model.onnx", "metrics.json"):
        assert (out / name).is_file()


def test_bad_teacher_exits_2_with_one_line(tiny_space_file, tmp_path, tiny_space):
    bad = tmp_path / "teacher.pt"
    bad.write_bytes(b"\x00garbage")
    arch = tmp_path / "arch.json"
    tiny_space.uniform(0.5).save(arch)
    r = run("distill", "--space", str(tiny_space_file), "--arch", str(arch), "--teacher", str(bad), "-o", str(tmp_path / "o"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and str(bad) in r.stderr and "Traceback" not in r.stderr
