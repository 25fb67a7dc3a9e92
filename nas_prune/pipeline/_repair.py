"""When the final network, measured on a quiet machine, is over the budget: the run acts instead of only warning.

The finalists' pick cleared the budget by the pick margin; the distilled network is the same
architecture, yet on a shared VM its ratio to the teacher can read several per cent higher minutes
later (issue 34: 0.330x in the finalists, 0.355x in the final check against 0.35x). When the final
check was *quiet* (not contended) and still over, the pick is shrunk, shape kept, to the predicted
ratio that the overshoot says restores the margin (:func:`~nas_prune.space.scaled_to` on the
calibrated table), cut from the distilled weights (:func:`~nas_prune.space.narrow`: the channels
of smallest L1 magnitude go), finished briefly from them (a quarter of the finish's epochs, the same
method), and checked again. ``feasible`` stays the measurement's word.

The network over the budget is kept beside it (``distill_over_budget_N/``, ``arch_over_budget_N.json``).
"""

from __future__ import annotations

import shutil
import time
from typing import TYPE_CHECKING, Any, Mapping

from nas_prune.distributed import world

if TYPE_CHECKING:
    from nas_prune.pipeline._context import RunContext
    from nas_prune.space import Architecture

__all__ = ["MAX_REPAIRS", "REPAIR_SHARE", "can_repair", "needs_repair", "repair", "shrunk_for"]

#: Shrink-and-finish attempts at most after a quiet final check over the budget.
MAX_REPAIRS = 2
#: The brief finish: this share of the finish's own epochs (at least one).
REPAIR_SHARE = 0.25


def needs_repair(final: Mapping[str, Any]) -> bool:
    """A final check over the limit on a quiet machine (a contended one is measured again instead)."""
    return not final["meets"] and not final.get("contended")


def shrunk_for(ctx: RunContext, arch: Architecture, final: Mapping[str, Any], margin: float) -> Architecture:
    """``arch`` shrunk, shape kept, to the predicted ratio at which the overshoot measured leaves ``margin``.

    Every gene keeps at most its current width (the network is cut from the current one).
    """
    from nas_prune.pipeline._finalists import predicted_ratio, shrunk_to
    from nas_prune.space import Architecture

    space = ctx.space
    ratio = predicted_ratio(space, ctx.table)
    target = ratio(arch) * (ctx.limit_ratio / float(final["ratio"])) * (1.0 - margin)
    new, now = shrunk_to(space, ratio, arch, target), space.validate(arch)
    return Architecture(space.id, {g.name: min(new.channels.get(g.name, g.width), now[g.name])
                                   for g in space.searchable_genes})


def repair(ctx: RunContext, final: Mapping[str, Any], attempt: int, margin: float) -> dict[str, Any]:
    """Shrink the current pick, finish it briefly from its distilled weights; ``distill/`` and ``arch.json`` are replaced.

    Returns:
        What was done: the architecture before and after, the ratio measured before, the epochs and seconds.
    """
    from nas_prune.export import load_model, save_model
    from nas_prune.pipeline.stages.distill import finish, finish_epochs
    from nas_prune.space import narrow

    out, space = ctx.out, ctx.space
    start = time.perf_counter()
    before = ctx.arch
    after = shrunk_for(ctx, before, final, margin)
    now = space.validate(before)
    if after.channels == {g.name: now[g.name] for g in space.searchable_genes}:
        return {"attempt": attempt, "done": False, "note": "the pick cannot shrink further in this space"}
    full = finish_epochs(ctx)
    epochs = max(1, round(REPAIR_SHARE * full))
    ctx.log(f"repair {attempt}: the final network measured {final['ratio']:.3f}x [{final['interval'][0]:.3f}, "
            f"{final['interval'][1]:.3f}] against {ctx.limit_ratio:.3g}x on a quiet machine: shrinking it (shape "
            f"kept) to leave a {margin:.0%} margin and finishing it {epochs} epoch(s) from its distilled weights "
            f"(a quarter of the finish's {full}), then checking again")
    narrowed = narrow(load_model(space, out / "distill" / "model.pt"), before, after, space=space)
    work = out / "repair"
    work.mkdir(exist_ok=True)
    save_model(narrowed, work / "start.pt", space_id=space.id, arch=dict(after.channels))
    shutil.rmtree(work / "distill", ignore_errors=True)
    finish(ctx, after, init=f"model:{work / 'start.pt'}", epochs=epochs, out_dir=work / "distill")
    # the network over the budget is kept beside; the repaired one takes its place for the check and summary
    shutil.move(str(out / "distill"), str(out / f"distill_over_budget_{attempt}"))
    shutil.copy2(out / "arch.json", out / f"arch_over_budget_{attempt}.json")
    shutil.move(str(work / "distill"), str(out / "distill"))
    after.save(out / "arch.json")
    return {"attempt": attempt, "done": True, "from": dict(before.channels), "to": dict(after.channels),
            "measured_ratio_before": final["ratio"], "epochs": epochs,
            "seconds": round(time.perf_counter() - start, 1)}


def can_repair(ctx: RunContext) -> bool:
    """Repairs run in one-process runs (under torchrun the other ranks are waiting in a collective)."""
    return ctx.cfg.repair and not world().active
