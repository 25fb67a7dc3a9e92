"""The latency tables shipped with nas-prune, read as package data (``nas_prune/latency/tables/``).

They were measured on the development VM (``devvm-amd-epyc-2vcpu/``); a run checks and adapts one
on this machine before it trusts it (:func:`nas_prune.latency.calibrated_table`). A checkout also
reaches them through the top-level ``latency_tables/`` link.
"""

from __future__ import annotations

from pathlib import Path

from nas_prune._io import package_files
from nas_prune.errors import NasPruneError

__all__ = ["find_shipped_table", "shipped_tables", "shipped_tables_dir"]


def shipped_tables_dir() -> Path:
    """The folder of shipped tables, wherever nas-prune is installed (a checkout or a wheel)."""
    return package_files("nas_prune.latency", "tables", "*/*.json")[0]


def shipped_tables() -> list[Path]:
    """Every shipped table file, sorted (``<device>/<space id>_<cpu>_<provider>-<n>thread(s).json``)."""
    return package_files("nas_prune.latency", "tables", "*/*.json")[1]


def find_shipped_table(space_id: str, threads: int, *, provider: str = "cpu", root: Path | None = None) -> Path | None:
    """A shipped table measured for ``space_id`` at ``threads`` threads with ``provider``, if any.

    Args:
        space_id: The space's id (``space.id``).
        threads: onnxruntime intra-op threads the table was measured with.
        provider: Execution provider (``cpu``; shipped tables are all CPU tables today).
        root: Search this folder instead of the shipped tables (e.g. your own collection).
    """
    from nas_prune.latency._table import LatencyTable

    if root is None:
        paths = shipped_tables()
    else:
        paths = sorted(root.rglob("*.json")) if root.is_dir() else []
    for path in paths:
        try:
            table = LatencyTable.load(path)
        except NasPruneError:
            continue
        if table.space_id == space_id and int(table.settings.get("threads", 0)) == threads \
                and table.settings.get("provider", "cpu") == provider:
            return path
    return None
