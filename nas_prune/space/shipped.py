"""Deprecated alias of :mod:`nas_prune.space.regenerate` (``make spaces``), kept for one release.

Renamed because it sat beside ``_shipped.py`` (which reads the shipped spaces) under almost the same name.
"""

from __future__ import annotations

import sys
import warnings

from nas_prune.space.regenerate import SETTINGS, main

__all__ = ["SETTINGS", "main"]

warnings.warn("nas_prune.space.shipped is renamed nas_prune.space.regenerate; this alias will be removed in the next "
              "release", DeprecationWarning, stacklevel=2)

if __name__ == "__main__":
    main(*sys.argv[1:])
