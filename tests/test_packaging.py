"""The wheel carries the shipped latency tables and search spaces: built, installed elsewhere, found there."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHECK = """
import json, nas_prune
from nas_prune.latency import LatencyTable, find_shipped_table, shipped_tables
from nas_prune.space import ChannelSpace, shipped_space
space = ChannelSpace.load(shipped_space("mobilenet_v2-32"))
table = LatencyTable.load(find_shipped_table(space.id, 1))
print(json.dumps({"package": nas_prune.__file__, "tables": [str(p) for p in shipped_tables()],
                  "space": str(shipped_space("mobilenet_v2-32")), "ms": table.predict(space.full())}))
"""


@pytest.mark.slow
def test_a_wheel_ships_the_tables_and_spaces(tmp_path):
    # Build from a copy of the sources, so that the checkout gets no build/ or egg-info.
    src = tmp_path / "src"
    shutil.copytree(ROOT / "nas_prune", src / "nas_prune", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(tmp_path / "dist"),
                    str(src)], check=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("nas_prune-*.whl")

    # A fresh environment that sees this one's dependencies (torch, onnxruntime, ...) but not the checkout.
    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    own_site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   check=True, capture_output=True, text=True).stdout.strip())
    (own_site / "outer.pth").write_text("\n".join(p for p in site.getsitepackages() if "site-packages" in p) + "\n")
    subprocess.run([*pip, "--python", str(py), "install", "--no-deps", "--no-index", str(wheel)], check=True,
                   timeout=300)

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([str(py), "-I", "-c", CHECK], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(found["package"]).is_relative_to(own_site), found["package"]  # the wheel's copy, not the checkout
    in_checkout = sorted((ROOT / "nas_prune" / "latency" / "tables").rglob("*.json"))
    assert len(found["tables"]) == len(in_checkout) >= 6  # every shipped table, 32x32 and 224x224
    assert all(Path(t).is_relative_to(own_site) for t in found["tables"])
    assert Path(found["space"]).is_relative_to(own_site) and found["ms"] > 0
    nni = own_site / "nas_prune" / "space" / "spaces" / "nni" / "mobilenet_v2-32.json"
    assert nni.is_file()
