"""Option parsing shared by the commands."""

from __future__ import annotations

import os
from typing import Any

from nas_prune._io import read_json
from nas_prune.space import Architecture

__all__ = ["load_arch"]


def load_arch(path: str | os.PathLike[str]) -> Architecture:
    """The architecture in ``path``: an architecture file, or a search result (its ``best.architecture``).

    So the output of ``nas-prune search -o best.json`` (or ``nas-prune nni``) can be passed straight
    to every ``--arch`` option.
    """
    obj: Any = read_json(path, what="architecture")
    best = obj.get("best") if isinstance(obj, dict) and "channels" not in obj else None
    if isinstance(best, dict) and "architecture" in best:
        arch = Architecture.from_json(best["architecture"], source=f"search result {path} (best.architecture)")
    else:
        arch = Architecture.from_json(obj, source=f"architecture {path}")
    return Architecture(arch.space, arch.channels, source=str(path))
