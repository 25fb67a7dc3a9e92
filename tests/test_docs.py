"""The documentation site builds strictly (a broken link, a bad docstring or a missing page fails) and
its home page renders in headless Chromium; every public subpackage has an API page."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nas_prune.report._screenshot import find_chromium, screenshot

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["data", "space", "teacher", "pretrained", "gates", "pruningnet", "latency", "search", "distill",
            "report", "pipeline", "export", "budget", "files", "training", "models", "errors", "on_device", "api",
            "distributed"]


def test_every_public_subpackage_has_an_api_page():
    nav = (ROOT / "mkdocs.yml").read_text()
    for name in PACKAGES:
        page = ROOT / "docs" / "api" / f"{name}.md"
        assert page.read_text().strip().endswith(f"::: nas_prune.{name}"), name
        assert f"api/{name}.md" in nav, name
    public = sorted(p.name for p in (ROOT / "nas_prune").iterdir()
                    if not p.name.startswith("_") and (p.suffix == ".py" or (p / "__init__.py").exists()))
    documented = {f"{n}.py" for n in PACKAGES} | set(PACKAGES)
    deprecated = ("device",)  # aliases kept for one release (nas_prune.device -> nas_prune.on_device)
    assert [p for p in public if p not in documented and p not in ("cli", "progress.py", *deprecated)] == []


@pytest.mark.slow
def test_the_site_builds_strictly_and_renders(tmp_path):
    pytest.importorskip("mkdocs", reason="the dev extra installs mkdocs (pip install 'nas-prune[dev]')")
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                        "-d", str(site)], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "ArchitectureObjective" in (site / "api" / "search" / "index.html").read_text()
    assert "load_data" in (site / "api" / "data" / "index.html").read_text()
    assert "nas-prune vs the usual ways" in (site / "results" / "index.html").read_text()  # benchmarks/README.md
    if find_chromium() is None:
        pytest.skip("Debian's chromium is not installed: the page is built but not rendered")
    png = screenshot(site / "index.html", tmp_path / "home.png", height=1200)
    assert png.stat().st_size > 20_000  # a rendered page, not a blank one


def test_the_stage_order_is_told_one_way():
    """The docs' diagram and stage table, and the package docstring, are the registry's (``pipeline.stages``)."""
    import nas_prune
    from nas_prune.pipeline.stages import diagram, markdown_table

    stages = (ROOT / "docs" / "stages.md").read_text()
    assert f"`{diagram()}`" in stages, f"docs/stages.md: the diagram is now\n{diagram()}"
    assert markdown_table() in stages, f"docs/stages.md: the stage table is now\n{markdown_table()}"
    assert diagram() in (nas_prune.__doc__ or "")
