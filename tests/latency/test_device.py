"""The bundle round trip through the on-device runner, without torch; hostile bundles."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

_BLOCK_TORCH = '''
import sys
class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is not installed on this device")
        return None
sys.meta_path.insert(0, _NoTorch())
'''


def _device_env(tmp_path: Path) -> dict[str, str]:
    """A "phone": torch cannot be imported and only the runner's files of nas_prune are there."""
    hook = tmp_path / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(_BLOCK_TORCH)
    pkg = tmp_path / "device_copy" / "nas_prune"
    if not pkg.exists():
        (pkg / "on_device").mkdir(parents=True)
        for name in ("__init__.py", "errors.py", "_io.py"):
            shutil.copy(REPO / "nas_prune" / name, pkg / name)
        for src in (REPO / "nas_prune" / "on_device").glob("*.py"):
            shutil.copy(src, pkg / "on_device" / src.name)
    return dict(os.environ, PYTHONPATH=f"{hook}{os.pathsep}{pkg.parent}", NAS_PRUNE_PROGRESS="0")


def _run_device(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nas_prune.on_device", *args], cwd=tmp_path, env=_device_env(tmp_path),
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def bundle(tiny_space, tmp_path_factory):
    from nas_prune.latency import write_bundle

    path = tmp_path_factory.mktemp("bundle") / "bundle.zip"
    write_bundle(tiny_space, path, nets=10, rounds=3, seed=1,
                 preprocess={"mean": [0.286], "std": [0.353], "resize": None, "source": "--mean/--std"})
    return path


def test_the_hook_really_blocks_torch(tmp_path):
    proc = subprocess.run([sys.executable, "-c", "import torch"], env=_device_env(tmp_path), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 0 and "not installed on this device" in proc.stderr
    where = subprocess.run([sys.executable, "-c", "import nas_prune.on_device as d; print(d.__file__)"], cwd=tmp_path,
                           env=_device_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert "device_copy" in where.stdout, where.stderr  # the copy runs, not the full checkout


def test_runner_imports_no_torch(tmp_path):
    code = ("import sys, nas_prune.on_device, nas_prune.on_device.__main__; "
            "assert 'torch' not in sys.modules, 'torch imported'; print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(REPO)),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_bundle_round_trip_without_torch(bundle, tiny_space, tmp_path):
    from nas_prune.latency import LatencyTable, import_results

    with zipfile.ZipFile(bundle) as zf:
        names = zf.namelist()
        plan = json.loads(zf.read("plan.json"))
    assert "plan.json" in names and "models/reference.onnx" in names and len(plan["nets"]) == 10
    proc = _run_device(tmp_path, "run", str(bundle), "--threads", "1", "-o", "results.json", "--device-name", "phone")
    assert proc.returncode == 0, proc.stderr
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["complete"] and len(res["records"]) == 10 and res["meta"]["device"] == "phone"
    table = import_results(tmp_path / "results.json", space=tiny_space)
    table.save(tmp_path / "table.json")
    loaded = LatencyTable.load(tmp_path / "table.json")
    assert loaded.space_id == tiny_space.id and loaded.meta["device"] == "phone"
    # the network's preprocessing travels with the bundle, the device's results and the table (never timed)
    assert plan["preprocess"]["mean"] == [0.286] and res["plan"]["preprocess"] == plan["preprocess"]
    assert loaded.meta["preprocess"] == plan["preprocess"]
    assert loaded.predict(tiny_space.sample(0)) > 0
    # a second run of a finished results file re-times nothing and keeps every record
    again = _run_device(tmp_path, "run", str(bundle), "--threads", "1", "-o", "results.json")
    assert again.returncode == 0 and len(json.loads((tmp_path / "results.json").read_text())["records"]) == 10
    # two threads: timed in the shared-pool worker, which the device copy runs without torch too
    two = _run_device(tmp_path, "run", str(bundle), "--threads", "2", "-o", "results2.json")
    assert two.returncode == 0, two.stderr
    assert len(json.loads((tmp_path / "results2.json").read_text())["records"]) == 10


def _hostile_bundle(path: Path, bundle: Path, name: str, data: bytes, replace: str | None = None) -> Path:
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            if item.filename != replace:
                dst.writestr(item, src.read(item.filename))
        dst.writestr(name, data)
    return path


@pytest.mark.parametrize("member", ["../escaped.onnx", "/tmp/absolute.onnx", "models/../../escaped.onnx"])
def test_zip_slip_is_refused(bundle, tmp_path, member):
    evil = _hostile_bundle(tmp_path / "evil.zip", bundle, member, b"x")
    proc = _run_device(tmp_path, "run", str(evil), "-o", "results.json")
    assert proc.returncode == 2
    assert "zip slip" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path.parent / "escaped.onnx").exists() and not (tmp_path / "results.json").exists()


def test_malformed_onnx_is_one_line(bundle, tmp_path):
    bad = _hostile_bundle(tmp_path / "bad.zip", bundle, "models/n0003.onnx", b"\x08\x01garbage", replace="models/n0003.onnx")
    proc = _run_device(tmp_path, "run", str(bad), "-o", "results.json")
    assert proc.returncode == 2
    assert "n0003.onnx" in proc.stderr and "not a valid ONNX" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_not_a_zip_and_bad_plan(tmp_path, bundle):
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    proc = _run_device(tmp_path, "run", "junk.zip", "-o", "r.json")
    assert proc.returncode == 2 and "not a zip" in proc.stderr
    bad = _hostile_bundle(tmp_path / "plan.zip", bundle, "plan.json", b'{"format": "x"}', replace="plan.json")
    proc = _run_device(tmp_path, "run", str(bad), "-o", "r.json")
    assert proc.returncode == 2 and "plan.json" in proc.stderr


def test_import_refuses_other_files(tmp_path, tiny_table_file):
    from nas_prune.errors import InvalidFileError
    from nas_prune.latency import import_results

    with pytest.raises(InvalidFileError, match="results file"):
        import_results(tiny_table_file)
