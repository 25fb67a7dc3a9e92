"""The old name of the on-device runner, ``nas_prune.device``, still works for one release, and says so."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest


def test_old_import_path_warns_and_gives_the_same_objects():
    sys.modules.pop("nas_prune.device", None)
    with pytest.warns(DeprecationWarning, match="renamed nas_prune.on_device"):
        old = importlib.import_module("nas_prune.device")
    import nas_prune.on_device as new

    assert old.run_bundle is new.run_bundle and old.TimingSettings is new.TimingSettings
    assert sorted(old.__all__) == sorted(new.__all__)


def test_old_module_command_still_runs():
    r = subprocess.run([sys.executable, "-m", "nas_prune.device", "--help"], capture_output=True, text=True,
                       check=False)
    assert r.returncode == 0, r.stderr
    assert "nas_prune.on_device" in r.stdout  # the help names the new command

