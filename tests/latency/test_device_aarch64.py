"""The device runner on aarch64 under qemu-user (``examples/aarch64_emulated.sh setup``), and emulation labels.

The emulated run proves the bundle, its runner and the import work on a 64-bit ARM Python with
numpy and onnxruntime and no torch; its timings are labelled as emulated and never used as a
machine's latencies.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ROOT = Path(os.environ.get("NAS_PRUNE_ARM64_ROOT", "/opt/nas-prune-arm64"))
QEMU = shutil.which("qemu-aarch64-static")
_MISSING = ("qemu-aarch64-static is not installed" if QEMU is None else
            f"no arm64 userland at {ROOT}" if not (ROOT / ".nas-prune-ready").is_file() else "")
emulator = pytest.mark.skipif(bool(_MISSING), reason=f"{_MISSING}: run examples/aarch64_emulated.sh setup "
                              "(.ci/run does)")

RPI4 = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU part\t: 0xd08

processor\t: 1
CPU implementer\t: 0x41
CPU part\t: 0xd08

Hardware\t: BCM2835
Model\t\t: Raspberry Pi 4 Model B Rev 1.4
"""

PHONE = """processor\t: 0
Processor\t: AArch64 Processor rev 13 (aarch64)
CPU part\t: 0xd05
processor\t: 1
CPU part\t: 0xd05
processor\t: 2
CPU part\t: 0xd41
processor\t: 3
CPU part\t: 0xd44
Hardware\t: Qualcomm Technologies, Inc SM8350
"""


def test_cpu_model_names_arm_boards_and_phones():
    from nas_prune.on_device import cpu_model_from

    assert cpu_model_from(RPI4) == "Raspberry Pi 4 Model B Rev 1.4 (Cortex-A72 x2)"
    assert cpu_model_from(PHONE) == "Qualcomm Technologies, Inc SM8350 (Cortex-A55 x2 + Cortex-A78 x1 + Cortex-X1 x1)"
    assert cpu_model_from("processor : 0\nmodel name : AMD EPYC 7B13\n") == "AMD EPYC 7B13"
    assert cpu_model_from("CPU part : 0xfff\n") == "ARM part 0xfff x1" and cpu_model_from("") is None


def test_emulation_is_named_or_detected(monkeypatch):
    from nas_prune.on_device import _info, machine_info

    monkeypatch.delenv("NAS_PRUNE_EMULATED", raising=False)
    kernel = {"arch": "x86_64"}
    monkeypatch.setattr(_info, "_read_first_line", lambda p: kernel["arch"] if p.endswith("kernel/arch") else "")
    monkeypatch.setattr(_info.platform, "machine", lambda: "aarch64")
    assert _info.emulation() == "user-mode emulation (aarch64 on a x86_64 kernel)"
    kernel["arch"] = "aarch64"
    monkeypatch.setattr(_info.platform, "machine", lambda: "armv8l")  # a 32-bit userland on a 64-bit ARM kernel
    assert _info.emulation() is None and "emulated" not in machine_info()
    kernel["arch"] = ""  # kernels before /proc/sys/kernel/arch: nothing to compare with
    assert _info.emulation() is None
    monkeypatch.setenv("NAS_PRUNE_EMULATED", "qemu-aarch64")
    assert machine_info()["emulated"] == "qemu-aarch64"


def _runner_copy(tmp_path: Path) -> Path:
    """What a phone gets: only the runner's files of nas_prune."""
    pkg = tmp_path / "device" / "nas_prune"
    (pkg / "on_device").mkdir(parents=True)
    for name in ("__init__.py", "errors.py", "_io.py"):
        shutil.copy(REPO / "nas_prune" / name, pkg / name)
    for src in (REPO / "nas_prune" / "on_device").glob("*.py"):
        shutil.copy(src, pkg / "on_device" / src.name)
    return pkg.parent


def _emulated(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "NAS_PRUNE_EMULATED", "VIRTUAL_ENV"))}
    env.update(QEMU_CPU=os.environ.get("NAS_PRUNE_QEMU_CPU", "cortex-a72"), NAS_PRUNE_PROGRESS="0")
    return subprocess.run([str(QEMU), "-L", str(ROOT), str(ROOT / "usr/bin/python3"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


@pytest.mark.slow
@emulator
def test_bundle_runs_on_emulated_aarch64_and_imports_as_emulated(tiny_space, tmp_path, capsys):
    from nas_prune.latency import LatencyTable, calibrated_table, calibration_label, find_shipped_table, write_bundle
    from tests.conftest import run_main

    write_bundle(tiny_space, tmp_path / "bundle.zip", nets=6, rounds=2, runs_per_round=3, warmup=1, seed=1)
    device = _runner_copy(tmp_path)
    code = ("import sys, platform, nas_prune.on_device, nas_prune.on_device.__main__; "
            "print(platform.machine(), 'torch' in sys.modules)")
    where = _emulated(device, "-c", code)
    assert where.returncode == 0 and where.stdout.split() == ["aarch64", "False"], where.stderr
    proc = _emulated(device, "-m", "nas_prune.on_device", "run", "../bundle.zip", "--threads", "1", "-o", "../results.json",
                     "--device-name", "qemu-a72")
    assert proc.returncode == 0, proc.stderr
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["complete"] and len(res["records"]) == 6
    assert "aarch64" in res["meta"]["platform"] and "Cortex-A72" in res["meta"]["cpu_model"]
    kernel = Path("/proc/sys/kernel/arch").read_text().strip() if Path("/proc/sys/kernel/arch").is_file() else ""
    if kernel and kernel != "aarch64":  # the runner sees through qemu by itself (kernels >= 6.1 have the file)
        assert f"aarch64 on a {kernel} kernel" in res["meta"]["emulated"]
    code, out, _ = run_main(capsys, "profile", "import", str(tmp_path / "results.json"), "--emulated", "qemu-aarch64",
                            "-o", str(tmp_path / "tables" / "emulated.json"))
    assert code == 0 and "EMULATED (qemu-aarch64), not a device's speed" in out
    table = LatencyTable.load(tmp_path / "tables" / "emulated.json")
    # qemu-user shares the host's machine key: the table must still not pass for this machine's
    assert table.meta["emulated"] == "qemu-aarch64" and table.meta["calibration"]["kind"] == "device"
    assert "UNDER EMULATION (qemu-aarch64)" in calibration_label(calibrated_table(table, tiny_space))
    assert table.predict(tiny_space.sample(0)) > 0
    assert find_shipped_table(tiny_space.id, 1, root=tmp_path / "tables") is None
    native = table.to_json()
    del native["meta"]["emulated"]
    (tmp_path / "native").mkdir()
    (tmp_path / "native" / "t.json").write_text(json.dumps(native))
    assert find_shipped_table(tiny_space.id, 1, root=tmp_path / "native") == tmp_path / "native" / "t.json"
