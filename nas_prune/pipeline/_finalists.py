"""The finalists of ``nas-prune run``: the search's most accurate candidates, measured against the teacher.

The table ranks thousands of candidates in microseconds; the budget's verdict is a measurement.
The ``k`` most accurate predicted-feasible candidates are exported and each is timed interleaved
with the teacher, in pairs as in the final check (:func:`nas_prune.latency._ratio.measure_ratios`, more rounds where the noise is wider than
the margin), and the pick is the most accurate one whose *measured* ratio meets the budget.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from nas_prune._io import read_json, write_json

__all__ = ["top_candidates", "pick_measured", "finalists_stage"]


def top_candidates(trials: Sequence[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """The ``k`` best predicted-feasible trials with distinct architectures (best first).

    Best by the search's own ranking: the PruningNet ``score`` where the trial has one (its top-1
    ``accuracy`` otherwise), faster first among equals.
    """
    seen, out = set(), []

    def rank(t: dict[str, Any]) -> float:
        return float(t["score"] if t.get("score") is not None else t["accuracy"])

    for t in sorted((t for t in trials if t.get("feasible") and t.get("channels")),
                    key=lambda t: (-rank(t), float(t["latency_ms"]))):
        key = tuple(sorted(t["channels"].items()))
        if key not in seen:
            seen.add(key)
            out.append(t)
        if len(out) == k:
            break
    return out


def pick_measured(cands: Sequence[dict[str, Any]], measured: Sequence[dict[str, Any]]) -> tuple[int, bool]:
    """Index of the most accurate candidate whose measurement meets the budget (``cands`` best first).

    Returns ``(index, met)``; when none meets, the one with the lowest measured ratio and ``False``.
    """
    for i, m in enumerate(measured):
        if m["meets"]:
            return i, True
    return min(range(len(measured)), key=lambda i: measured[i]["ratio"]), False


def finalists_stage(space: Any, out: Path, table: Any, limit: float, k: int,
                    log: Callable[[str], None] = print) -> dict[str, Any]:
    """Measure the top ``k`` candidates against ``out/teacher.onnx``; write ``finalists.json`` and ``arch.json``."""
    from nas_prune.latency import arch_onnx_bytes, measure_ratios
    from nas_prune.space import Architecture

    trials = read_json(out / "trials.json", what="search trials")
    cands = top_candidates(trials, k)
    if not cands:
        return {"n": 0, "note": "no predicted-feasible trial to measure: the search's pick is kept"}
    archs = [Architecture(space.id, dict(t["channels"])) for t in cands]
    # each candidate alone with the teacher: the final check's protocol
    measured = [measure_ratios({"f": arch_onnx_bytes(space, a)}, out / "teacher.onnx", space.input_shape,
                               table.settings, limit=limit)["f"] for a in archs]
    i, met = pick_measured(cands, measured)
    rows = [{"trial": t["number"], "accuracy": t["accuracy"], "predicted_ms": t["latency_ms"],
             "predicted_ratio": table.relative(a) / table.relative(space.full()), **m, "picked": j == i}
            for j, (t, a, m) in enumerate(zip(cands, archs, measured))]
    write_json(out / "finalists.json", rows)
    archs[i].save(out / "arch.json")
    over = sum(not m["meets"] for m in measured)
    undecided = sum(m["decided_by"] == "median" for m in measured)
    log(f"finalists: {len(cands)} measured against the teacher, {over} over the {limit:.3g}x budget"
        + (f", {undecided} decided on the median after {max(m['rounds'] for m in measured)} rounds "
           "(noise wider than the margin)" if undecided else "")
        + f"; picked #{i + 1} by accuracy (trial {cands[i]['number']}): measured {measured[i]['ratio']:.3f}x "
          f"[{measured[i]['interval'][0]:.3f}, {measured[i]['interval'][1]:.3f}]"
        + ("" if met else " -- NONE met the budget: the fastest is kept"))
    return {"n": len(cands), "over_budget": over, "undecided": undecided, "picked_rank": i + 1,
            "picked_trial": cands[i]["number"], "met": met, "measured_ratio": measured[i]["ratio"],
            "interval": measured[i]["interval"], "accuracy": cands[i]["accuracy"], "limit": limit}
