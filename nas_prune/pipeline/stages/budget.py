"""Stage ``budget``: the teacher and the table's reference timed now; the budget on the calibrated clock."""

from __future__ import annotations

from typing import Any

from nas_prune.pipeline._context import RunContext, Stage

__all__ = ["STAGE"]


def run(ctx: RunContext) -> dict[str, Any]:
    """The budget in milliseconds and as a ratio of the teacher's measured latency."""
    table, space = ctx.table, ctx.space
    now = table.measure_now(space, {"teacher": ctx.out / "teacher.onnx"}, rounds=15)
    teacher_cal = now["teacher"] / now["reference"] * table.reference_ms
    budget_ms = ctx.cfg.limit.to_ms(teacher_cal)
    return {"teacher_ms": now["teacher"], "reference_ms": now["reference"], "teacher_ms_calibrated": teacher_cal,
            "budget_ms": budget_ms, "limit_ratio": budget_ms / teacher_cal,
            "teacher_predicted_ms": table.predict(space.full())}


STAGE = Stage("budget", "the teacher timed now; the budget on the calibrated clock", run, needs=("teacher", "calibration"))
