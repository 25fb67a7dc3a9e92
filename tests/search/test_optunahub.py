"""The samplers in OptunaHub's registry layout (package/samplers/<name>/) load the way OptunaHub loads them."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from tests.search.conftest import ROOT, cli_env

optunahub = pytest.importorskip("optunahub", reason="optunahub is not installed (pip install 'nas-prune[hub]')")
PACKAGES = {"nas_prune_evolution": "EvolutionSampler", "nas_prune_gate_prior": "GatePriorSampler"}


@pytest.mark.parametrize("name, sampler", PACKAGES.items())
def test_package_layout_and_load_local_module(name, sampler):
    folder = ROOT / "package" / "samplers" / name
    for required in ("README.md", "__init__.py", "LICENSE", "example.py", "requirements.txt", "tests/test_sampler.py"):
        assert (folder / required).is_file(), required
    readme = (folder / "README.md").read_text()
    _, front, body = readme.split("---", 2)
    meta = yaml.safe_load(front)
    assert {"author", "title", "description", "tags", "optuna_versions", "license"} <= set(meta)
    assert meta["license"] == "MIT License" and "sampler" in meta["tags"]
    for section in ("## Abstract", "## Class or Function Names", "## Installation", "## Example", "## Others"):
        assert section in body
    assert (folder / "LICENSE").read_text().startswith("MIT License")
    module = optunahub.load_local_module(f"samplers/{name}", registry_root=str(ROOT / "package"))
    assert module.__name__ == f"optunahub_registry.package.samplers.{name}"
    import optuna

    assert issubclass(getattr(module, sampler), optuna.samplers.BaseSampler)


def test_the_packages_own_tests_pass():
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--import-mode=importlib",
                           *(str(ROOT / "package" / "samplers" / n / "tests") for n in PACKAGES)],
                          cwd=ROOT / "package", env=cli_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "2 passed" in proc.stdout
