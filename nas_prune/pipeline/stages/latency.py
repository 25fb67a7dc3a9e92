"""Stage ``latency``: the run's latency table (given, shipped for this space, or profiled here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nas_prune._io import atomic_write_bytes
from nas_prune.pipeline._context import RunContext, Stage

__all__ = ["STAGE"]


def run(ctx: RunContext) -> dict[str, Any]:
    """Write ``table.json``: ``--table``, else a shipped table (retargeted to other classes), else profiled.

    A table that cannot tell widths apart (fixed overhead) is said loudly and recorded as ``flat``.
    """
    from nas_prune.latency import flat_table_warning

    info, table = _table(ctx)
    flat = flat_table_warning(table, ctx.space)
    if flat:
        ctx.log(flat)
        info["flat"] = flat
    return info


def _table(ctx: RunContext) -> tuple[dict[str, Any], Any]:
    """``table.json`` written, with what the stage records and the table itself."""
    from nas_prune.latency import LatencyTable, build_table, find_shipped_table, retarget_table, shipped_tables_dir

    cfg, space, out = ctx.cfg, ctx.space, ctx.out
    if cfg.table is not None:
        table = LatencyTable.load(cfg.table)
        table.check_space(space)
        atomic_write_bytes(out / "table.json", Path(cfg.table).read_bytes())
        return {"source": str(cfg.table)}, table
    shipped = None if cfg.profile else find_shipped_table(space.id, cfg.threads, retarget_to=space)
    if shipped is not None:
        source = f"shipped:{shipped.relative_to(shipped_tables_dir()).as_posix()}"
        shipped_table = LatencyTable.load(shipped)
        if shipped_table.space_id == space.id:
            atomic_write_bytes(out / "table.json", shipped.read_bytes())
            return {"source": source}, shipped_table
        ctx.log(f"latency table {source} is for {shipped_table.space_id}: used for {space.id} "
                "(other classes; checked on this machine next)")
        retargeted = retarget_table(shipped_table, space)
        retargeted.save(out / "table.json")
        return {"source": source, "retargeted_from": shipped_table.space_id}, retargeted
    ctx.log(f"profiling a latency table for {space.id} at {cfg.threads} thread(s) (saves as it goes)")
    return {"source": "profiled"}, build_table(space, threads=cfg.threads, output=out / "table.json")


STAGE = Stage("latency", "the latency table: given, shipped for this space, or profiled here", run, needs=("space",), outputs=("table.json",),
              reads="none (timed on random inputs)")
