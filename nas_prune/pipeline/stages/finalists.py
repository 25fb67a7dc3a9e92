"""Stage ``finalists``: the search's most accurate candidates measured against the teacher; the pick meets the budget.

The algorithm (rounds, bias correction, shrinking) is :mod:`nas_prune.pipeline._finalists`.
"""

from __future__ import annotations

from typing import Any

from nas_prune.pipeline._context import RunContext, Stage

__all__ = ["STAGE"]


def run(ctx: RunContext) -> dict[str, Any]:
    """Measure the top candidates; write ``finalists.json`` and the pick to ``arch.json``."""
    from nas_prune.pipeline._finalists import finalists_stage

    return finalists_stage(ctx.space, ctx.out, ctx.table, ctx.limit_ratio, ctx.cfg.finalists,
                           margin=ctx.cfg.pick_margin, teacher_ms=ctx.results["budget"]["teacher_ms"], log=ctx.log)


STAGE = Stage("finalists", "the most accurate candidates measured against the teacher: the pick", run,
              needs=("budget", "search"), outputs=("arch.json",),
              reads="none (latency only)")
