"""Stage ``check``: the final network measured against the teacher (the budget's verdict), and the table's error.

Predicted against measured for the chosen and a spread of searched architectures: predictions are
rescaled to the reference timed in the same rounds, so they compare with the measurement, not with
the clock of the search.
"""

from __future__ import annotations

from typing import Any

from nas_prune._io import read_json, write_json
from nas_prune.pipeline._context import RunContext, Stage

__all__ = ["STAGE"]


def _spread(trials: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """Up to ``n`` distinct trials spread evenly over the predicted-latency range."""
    ranked = sorted((t for t in trials if t.get("channels")), key=lambda t: t["latency_ms"])
    if len(ranked) <= n:
        return ranked
    step = (len(ranked) - 1) / max(n - 1, 1)
    return [ranked[round(i * step)] for i in range(n)]


def _arch_of_the_final_network(ctx: RunContext) -> None:
    """``arch.json`` is the finished network's architecture (a repair killed between its two writes is mended)."""
    from nas_prune.export import load_checkpoint
    from nas_prune.space import Architecture

    channels = load_checkpoint(ctx.out / "distill" / "model.pt", what="final network").get("channels")
    if channels and ctx.space.validate(Architecture(ctx.space.id, dict(channels))) != ctx.space.validate(ctx.arch):
        Architecture(ctx.space.id, dict(channels)).save(ctx.out / "arch.json")


def _final_verdict(ctx: RunContext) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The final check; while it is over the budget on a quiet machine, a repair (:mod:`~nas_prune.pipeline._repair`) and a new check."""
    from nas_prune.pipeline._check import measure_final
    from nas_prune.pipeline._repair import MAX_REPAIRS, can_repair, needs_repair, repair

    out, space, table = ctx.out, ctx.space, ctx.table
    quiet = ctx.results["finalists"].get("quiet_teacher_ms")
    margin = float(ctx.results["finalists"].get("margin") or ctx.cfg.pick_margin)
    final = measure_final(out, space.input_shape, table.settings, ctx.limit_ratio, quiet)
    repairs: list[dict[str, Any]] = []
    while needs_repair(final) and can_repair(ctx) and len(repairs) < MAX_REPAIRS:
        repairs.append(repair(ctx, final, len(repairs) + 1, margin))
        if not repairs[-1]["done"]:
            break
        final = measure_final(out, space.input_shape, table.settings, ctx.limit_ratio, quiet)
        repairs[-1]["measured_ratio_after"] = final["ratio"]
    if needs_repair(final) and not repairs and not can_repair(ctx):
        ctx.log("the final network is over the budget on a quiet machine; no repair was tried (--no-repair, or "
                "several processes): run 'nas-prune check' again, or re-run with a tighter --pick-margin")
    return final, repairs


def run(ctx: RunContext) -> dict[str, Any]:
    """Write ``final_check.json`` (the verdict) and ``latency_check.json`` (predicted vs measured)."""
    from nas_prune.latency import arch_onnx_bytes
    from nas_prune.space import Architecture

    _arch_of_the_final_network(ctx)
    final, repairs = _final_verdict(ctx)
    out, space, table = ctx.out, ctx.space, ctx.table
    trials = read_json(out / "trials.json", what="search trials")
    picks = [ctx.arch] + [Architecture(space.id, t["channels"]) for t in _spread(trials, ctx.cfg.validate_n)]
    now = table.measure_now(space, {f"arch{i}": arch_onnx_bytes(space, a) for i, a in enumerate(picks)}, rounds=15)
    rows: list[dict[str, Any]] = [{"label": "chosen" if i == 0 else f"searched {i}",
                                   "predicted_ms": table.predict(a, reference_ms=now["reference"]),
                                   "measured_ms": now[f"arch{i}"], "predicted_ms_calibrated": table.predict(a)}
                                  for i, a in enumerate(picks)]
    write_json(out / "latency_check.json", rows)
    errs = sorted(abs(r["predicted_ms"] / r["measured_ms"] - 1) for r in rows)
    return {"n": len(rows), "median_abs_err": errs[len(errs) // 2], "final_ratio": final["ratio"],
            "final_meets": final["meets"], "repairs": repairs}


STAGE = Stage("check", "the final network measured against the teacher: the verdict", run, needs=("finalists", "distill"),
              outputs=("latency_check.json", "final_check.json"), reads="none (latency only)")
