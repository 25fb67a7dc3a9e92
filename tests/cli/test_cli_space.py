from __future__ import annotations

import json
import subprocess
import sys

import onnx


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nas_prune", *args], capture_output=True, text=True, cwd=cwd)


def test_space_sample_materialize(tmp_path):
    space = tmp_path / "space.json"
    r = run("space", "mobilenet_v3_small", "-o", str(space))
    assert r.returncode == 0, r.stderr
    r = run("arch", "sample", "--space", str(space), "--seed", "3", "-o", str(tmp_path / "a.json"))
    assert r.returncode == 0, r.stderr
    arch = json.loads(r.stdout)
    assert arch["space"] == json.loads(space.read_text())["id"]
    r = run("arch", "materialize", "--space", str(space), "--arch", str(tmp_path / "a.json"), "-o", str(tmp_path / "m.onnx"))
    assert r.returncode == 0, r.stderr
    onnx.checker.check_model(onnx.load(str(tmp_path / "m.onnx")))


def test_models_lists_tested():
    r = run("models")
    assert r.returncode == 0 and "shufflenet_v2_x1_0  (tested)" in r.stdout


def test_errors_are_one_line_exit_2(tmp_path, tiny_space_file):
    r = run("space", "no_such_model", "-o", str(tmp_path / "x.json"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no_such_model" in r.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"space": ')
    r = run("arch", "sample", "--space", str(bad))
    assert r.returncode == 2 and str(bad) in r.stderr and "Traceback" not in r.stderr
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"space": "another-space", "channels": {}}))
    r = run("arch", "materialize", "--space", str(tiny_space_file), "--arch", str(other), "-o", str(tmp_path / "m.onnx"))
    assert r.returncode == 2 and "another-space" in r.stderr and not (tmp_path / "m.onnx").exists()
    too_many = tmp_path / "big.json"
    space_id = json.loads(tiny_space_file.read_text())["id"]
    too_many.write_text(json.dumps({"space": space_id, "channels": {"block.0": 64}}))
    r = run("arch", "materialize", "--space", str(tiny_space_file), "--arch", str(too_many), "-o", str(tmp_path / "m.onnx"))
    assert r.returncode == 2 and "block.0" in r.stderr
