"""The search spaces shipped with nas-prune, read as package data (``nas_prune/space/spaces/``).

``<model>-<size>.json`` for every tested model at 32x32 (10 classes) and 224x224 (1000 classes),
and the bare NNI search spaces ``nni/<model>-<size>.json``; ``make spaces`` regenerates them
(:mod:`nas_prune.space.regenerate`). A checkout also reaches them through the top-level
``search_spaces/`` link.
"""

from __future__ import annotations

from pathlib import Path

from nas_prune._io import package_files
from nas_prune.errors import NasPruneError

__all__ = ["shipped_space", "shipped_spaces", "shipped_spaces_dir"]


def shipped_spaces_dir() -> Path:
    """The folder of shipped spaces, wherever nas-prune is installed (a checkout or a wheel)."""
    return package_files("nas_prune.space", "spaces", "*.json")[0]


def shipped_spaces() -> list[Path]:
    """Every shipped space file (``<model>-<size>.json``; the NNI files are in ``nni/`` beside them)."""
    return package_files("nas_prune.space", "spaces", "*.json")[1]


def shipped_space(name: str) -> Path:
    """The shipped space file ``name`` (``"mobilenet_v2-32"``, with or without ``.json``).

    Raises:
        NasPruneError: no such shipped space (the message lists them).
    """
    path = shipped_spaces_dir() / (name if name.endswith(".json") else f"{name}.json")
    if not path.is_file():
        names = ", ".join(p.stem for p in shipped_spaces())
        raise NasPruneError(f"no shipped space {name!r}: use one of {names}, or make one with 'nas-prune space MODEL'")
    return path
