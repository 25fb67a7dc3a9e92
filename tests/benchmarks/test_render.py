"""``make figures``: the benchmark HTML is rebuilt from the committed JSON (and is not committed)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_render_rebuilds_the_html_from_json(tmp_path):
    src = ROOT / "benchmarks" / "results" / "compare_methods_resnet18_b035_e8.json"
    shutil.copy(src, tmp_path / src.name)
    (tmp_path / "other.json").write_text('{"benchmark": "no figure"}')
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "render.py"), *map(str, sorted(tmp_path.glob("*.json")))],
                       capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    html = tmp_path / src.with_suffix(".html").name
    assert r.stdout.split() == [str(html)]
    text = html.read_text()
    assert "plotly" in text and "resnet18" in text and not (tmp_path / "other.html").exists()


def test_no_html_is_committed():
    r = subprocess.run(["git", "ls-files", "benchmarks/results"], capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        pytest.skip("not a git checkout")
    assert r.stdout and not [f for f in r.stdout.split() if f.endswith(".html")]
