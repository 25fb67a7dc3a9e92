"""Stage ``space``: the channel search space of the user's network (one gene per group of coupled channels)."""

from __future__ import annotations

from typing import Any

from nas_prune.pipeline._context import RunContext, Stage

__all__ = ["STAGE"]


def run(ctx: RunContext) -> dict[str, Any]:
    """Trace the model, verify that every gene prunes, write ``space.json``."""
    from nas_prune.space import TRACE_SECONDS, ChannelSpace, verify_space

    space = ChannelSpace.from_name(ctx.cfg.model, input_size=ctx.cfg.input_size, num_classes=ctx.data.num_classes,
                                   trace_seconds=TRACE_SECONDS)
    verify_space(space)  # a model nas-prune cannot prune is refused now, in one line, not hours later
    space.save(ctx.out / "space.json")
    return {"space_id": space.id, "genes": len(space.searchable_genes)}


STAGE = Stage("space", "the channel search space: one gene per group of coupled channels", run, outputs=("space.json",))
