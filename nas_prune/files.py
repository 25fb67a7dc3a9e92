"""Atomic file writes and validated JSON reads: the helpers every stage uses, public for scripts.

``write_json`` refuses NaN and infinities and replaces the file in one rename, so a reader never
sees half a file; ``read_json`` turns a missing, truncated or non-JSON file into a one-line
:class:`~nas_prune.errors.InvalidFileError`.
"""

from __future__ import annotations

from nas_prune._io import atomic_write_bytes, atomic_write_text, read_json, write_json

__all__ = ["atomic_write_bytes", "atomic_write_text", "read_json", "write_json"]
