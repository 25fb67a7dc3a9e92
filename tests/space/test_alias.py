"""The old name of the spaces' regeneration module still works for one release, and says so."""

from __future__ import annotations

import importlib
import sys

import pytest


def test_old_space_regeneration_module_warns():
    sys.modules.pop("nas_prune.space.shipped", None)
    with pytest.warns(DeprecationWarning, match="renamed nas_prune.space.regenerate"):
        old = importlib.import_module("nas_prune.space.shipped")
    from nas_prune.space.regenerate import main

    assert old.main is main
