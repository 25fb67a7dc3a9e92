"""The latency tables shipped with nas-prune, read as package data (``nas_prune/latency/tables/``).

They were measured on the development VMs (``devvm-amd-epyc-2vcpu/``: 1-thread 32x32;
``devvm-intel-xeon-2vcpu/``: 224x224 and 2-thread 32x32); a run checks and adapts one
on this machine before it trusts it (:func:`nas_prune.latency.calibrated_table`). A checkout also
reaches them through the top-level ``latency_tables/`` link.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nas_prune._io import package_files
from nas_prune.errors import NasPruneError

__all__ = ["find_shipped_table", "shipped_tables", "shipped_tables_dir"]


def shipped_tables_dir() -> Path:
    """The folder of shipped tables, wherever nas-prune is installed (a checkout or a wheel)."""
    return package_files("nas_prune.latency", "tables", "*/*.json")[0]


def shipped_tables() -> list[Path]:
    """Every shipped table file, sorted (``<device>/<space id>_<cpu>_<provider>-<n>thread(s).json``)."""
    return package_files("nas_prune.latency", "tables", "*/*.json")[1]


def find_shipped_table(space_id: str, threads: int, *, provider: str = "cpu", root: Path | None = None,
                       retarget_to: Any = None) -> Path | None:
    """A shipped table measured for ``space_id`` at ``threads`` threads with ``provider``, if any.

    With ``retarget_to`` (the space of ``space_id``), a table of the same network and input size
    for other classes is found too when none is exact (the 1000-class 224x224 tables serve any
    dataset): :func:`nas_prune.latency.retarget_table` re-keys it. Tables timed under an emulator
    are skipped: they are no device's speed.

    Args:
        space_id: The space's id (``space.id``).
        threads: onnxruntime intra-op threads the table was measured with.
        provider: Execution provider (``cpu``; shipped tables are all CPU tables today).
        root: Search this folder instead of the shipped tables (e.g. your own collection).
        retarget_to: The space to retarget a table of another class count to.
    """
    from nas_prune.latency._retarget import retarget_table
    from nas_prune.latency._table import LatencyTable

    if root is None:
        paths = shipped_tables()
    else:
        paths = sorted(root.rglob("*.json")) if root.is_dir() else []
    other = None
    for path in paths:
        try:
            table = LatencyTable.load(path)
        except NasPruneError:
            continue
        if table.meta.get("emulated") or int(table.settings.get("threads", 0)) != threads \
                or table.settings.get("provider", "cpu") != provider:
            continue
        if table.space_id == space_id:
            return path
        if retarget_to is not None and other is None:
            try:
                retarget_table(table, retarget_to)
                other = path
            except NasPruneError:
                pass
    return other
