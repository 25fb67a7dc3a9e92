"""Does a network meet a latency budget *here*? Its ratio to the teacher, measured until the noise allows a verdict.

A table's prediction picks candidates; the verdict on the budget is a measurement. Each candidate
is timed interleaved with the teacher (the drift-proof protocol of :mod:`nas_prune.device._timing`:
per-round low percentile, ratio in the same round), and the median per-round ratio is compared with
the budget's ratio. The uncertainty of that median is a percentile bootstrap over rounds. When the
interval straddles the limit (noise wider than the margin) more rounds are taken, up to
``max_rounds``; a candidate still undecided then is judged on its median and the verdict says so.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import numpy as np

__all__ = ["measure_ratios"]


def _median_interval(ratios: np.ndarray, *, resamples: int = 500, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(ratios), (resamples, len(ratios)))
    meds = np.median(ratios[idx], axis=1)
    return float(np.percentile(meds, 50 * (1 - level))), float(np.percentile(meds, 50 * (1 + level)))


def measure_ratios(models: Mapping[str, Any], teacher: Any, input_shape: Any, settings: Mapping[str, Any], *,
                   limit: float, rounds: int = 30, max_rounds: int = 120) -> dict[str, dict[str, Any]]:
    """Measure each model's latency ratio to ``teacher`` and decide whether it is at most ``limit``.

    Args:
        models: ``{name: ONNX bytes or path}`` of the candidates.
        teacher: ONNX bytes or path of the unpruned network.
        input_shape: ``(C, H, W)``.
        settings: Timing settings (a table's ``settings``); ``rounds`` is set here.
        limit: The budget as a ratio to the teacher's latency.
        rounds: Rounds of the first pass (every candidate and the teacher, interleaved).
        max_rounds: Rounds at most for a candidate whose interval straddles ``limit``.

    Returns:
        Per name: ``ratio`` (median of per-round ratios), ``interval`` (95 % bootstrap interval of
        that median), ``iqr``, ``rounds``, ``ms`` and ``teacher_ms`` (medians of the per-round
        values), ``meets`` (the verdict), ``decided_by`` (``"interval"``, or ``"median"`` when the
        noise stayed wider than the margin after ``max_rounds``) and ``load_average``.
    """
    from nas_prune.device import SessionRunner, TimingSettings, make_session, time_interleaved
    from nas_prune.latency._measure import to_onnx_bytes

    base = TimingSettings.from_json({**settings, "rounds": rounds})
    q = base.percentile
    runners = {"__teacher__": SessionRunner(make_session(to_onnx_bytes(teacher, input_shape), base, what="teacher"), base)}
    for i, (name, m) in enumerate(models.items()):
        runners[name] = SessionRunner(make_session(to_onnx_bytes(m, input_shape), base, what=f"model {name!r}"), base,
                                      seed=i + 1)
    per_round: dict[str, list[float]] = {n: [] for n in models}
    teacher_ms: dict[str, list[float]] = {n: [] for n in models}
    own_ms: dict[str, list[float]] = {n: [] for n in models}
    todo = list(models)
    done: dict[str, dict[str, Any]] = {}
    taken = 0
    while todo:
        batch = rounds if taken == 0 else min(rounds, max_rounds - taken)
        settings_now = TimingSettings.from_json({**base.to_json(), "rounds": batch})
        times = time_interleaved({k: runners[k] for k in ["__teacher__", *todo]}, settings_now)
        t_round = np.array([np.percentile(r, q) for r in times["__teacher__"]])
        for name in todo:
            c_round = np.array([np.percentile(r, q) for r in times[name]])
            per_round[name] += list(c_round / t_round)
            teacher_ms[name] += list(t_round * 1e3)
            own_ms[name] += list(c_round * 1e3)
        taken += batch
        left = []
        for name in todo:
            r = np.array(per_round[name])
            lo, hi = _median_interval(r)
            med = float(np.median(r))
            decided = hi <= limit or lo > limit
            if decided or taken >= max_rounds:
                q25, q75 = np.percentile(r, [25, 75])
                done[name] = {"ratio": med, "interval": [lo, hi], "iqr": float(q75 - q25), "rounds": len(r),
                              "ms": float(np.median(own_ms[name])), "teacher_ms": float(np.median(teacher_ms[name])),
                              "meets": bool(hi <= limit) if decided else bool(med <= limit),
                              "decided_by": "interval" if decided else "median", "limit": float(limit),
                              "load_average": [round(x, 2) for x in os.getloadavg()]}
            else:
                left.append(name)
        todo = left
    return {name: done[name] for name in models}
