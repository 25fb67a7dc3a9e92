"""Stage ``select``: the pick decided among the finalists and the baselines (``--select score|finetune``).

``score`` (the default) keeps the finalists' pick, the most accurate by the PruningNet's score that
measured under the budget. ``finetune`` lets the best finalists and the baselines a user would try
(uniform width, global magnitude pruning), aimed at the same measured budget, compete in a short real
fine-tune decided by successive halving: :mod:`nas_prune.pipeline._select`.
"""

from __future__ import annotations

from typing import Any

from nas_prune.pipeline._config import RunConfig
from nas_prune.pipeline._context import RunContext, Stage

__all__ = ["STAGE"]


def run(ctx: RunContext) -> dict[str, Any]:
    """``finetune``: fine-tune and compare, write ``select.json`` and the winner to ``arch.json``; ``score``: keep the pick."""
    if ctx.cfg.select == "score":
        return {"mode": "score", "note": "the finalists' pick (PruningNet score) is kept"}
    from nas_prune.pipeline._select import select_by_finetune

    return select_by_finetune(ctx, ctx.cfg.select_k, ctx.log)


def _data_use(cfg: RunConfig) -> str:
    if cfg.select == "score":
        return "none"
    return "a subset of the training split (brief fine-tunes), validation split (their accuracy)"


STAGE = Stage("select", "the pick: the finalists' (score) or the winner of a brief fine-tune among them and the "
              "baselines (finetune)", run, needs=("finalists",), reads=_data_use)
