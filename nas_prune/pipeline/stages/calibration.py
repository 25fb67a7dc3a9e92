"""Stage ``calibration``: a table this machine did not calibrate is checked, adapted or rebuilt here."""

from __future__ import annotations

from typing import Any

from nas_prune.pipeline._context import RunContext, Stage

__all__ = ["STAGE"]


def run(ctx: RunContext) -> dict[str, Any]:
    """Write ``table_calibrated.json``: the run's table on this machine's clock."""
    from nas_prune.latency import calibrated_table, calibration_label

    cal = calibrated_table(ctx.out / "table.json", ctx.space, mode=ctx.cfg.calibration, rebuild="auto", log=ctx.log)
    cal.save(ctx.out / "table_calibrated.json")
    meta = cal.meta.get("calibration") or {}
    return {"label": calibration_label(cal), **{k: v for k, v in meta.items() if k not in ("records", "candidates")}}


STAGE = Stage("calibration", "the table checked, adapted or rebuilt on this machine", run, needs=("space", "latency"),
              outputs=("table_calibrated.json",))
