"""Deprecated: ``python -m nas_prune.device`` runs ``python -m nas_prune.on_device`` (renamed; one more release)."""

from __future__ import annotations

import sys

from nas_prune.on_device.__main__ import main

if __name__ == "__main__":
    print("note: 'python -m nas_prune.device' is renamed 'python -m nas_prune.on_device'", file=sys.stderr)
    sys.exit(main())
