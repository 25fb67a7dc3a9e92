"""Regenerate the spaces shipped in ``nas_prune/space/spaces/`` (``make spaces``; ``search_spaces/`` in a checkout).

For every tested model at 32x32 (10 classes) and 224x224 (1000 classes) it writes the space file
``<model>-<size>.json`` and, for NNI users, the bare search space ``nni/<model>-<size>.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from nas_prune._io import write_json
from nas_prune.models import TESTED_MODELS
from nas_prune.space._shipped import shipped_spaces_dir
from nas_prune.space._space import ChannelSpace

__all__ = ["SETTINGS", "main"]

SETTINGS = ((32, 10), (224, 1000))


def main(out_dir: str | None = None) -> None:
    """Write every shipped space (and its NNI search space) into ``out_dir`` (default: the package's ``spaces/``)."""
    root = Path(out_dir) if out_dir else shipped_spaces_dir()
    for name in TESTED_MODELS:
        for size, classes in SETTINGS:
            space = ChannelSpace.from_name(name, input_size=size, num_classes=classes)
            space.save(root / f"{name}-{size}.json")
            write_json(root / "nni" / f"{name}-{size}.json", space.nni_search_space())
            print(f"{space.id}: {len(space.searchable_genes)} searchable genes")


if __name__ == "__main__":
    main(*sys.argv[1:])
