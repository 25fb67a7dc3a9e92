"""Does a network meet a latency budget *here*? Its ratio to the teacher, measured until the noise allows a verdict.

A table's prediction picks candidates; the verdict on the budget is a measurement. Each candidate
is timed interleaved with the teacher (the drift-proof protocol of :mod:`nas_prune.device._timing`:
per-round low percentile, ratio in the same round), and the median per-round ratio is compared with
the budget's ratio.

Rounds in one pair of onnxruntime sessions agree closely with each other, but not with the next
pair: on a shared VM the ratio of a small network to its teacher moves by several per cent from
one measurement to the next, seconds or minutes apart (measured: one architecture at 0.49x in the
finalists and 0.57x in the final check 40 s later, both with tight intervals over rounds), with the
host's load and with where the sessions' buffers land. So the rounds are split into ``sessions``
blocks, each with freshly created sessions and spread in time (``pairs``: block by block over
every candidate, ``pause_s`` between blocks), and the uncertainty of the median is a cluster
bootstrap over blocks: it covers that drift, not only the scatter of rounds. When the interval
straddles the limit (noise wider than the margin) more blocks are taken, up to ``max_rounds``
rounds; a candidate still undecided then is judged on its median and the verdict says so.
"""

from __future__ import annotations

import os
import time
from typing import Any, Mapping

import numpy as np

__all__ = ["measure_ratios"]


def _median_interval(ratios: np.ndarray, blocks: np.ndarray | None = None, *, resamples: int = 500,
                     level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap interval of the median of ``ratios``; over ``blocks`` (clusters) when given."""
    rng = np.random.default_rng(seed)
    ids = np.unique(blocks) if blocks is not None else np.array([])
    if len(ids) >= 3:
        members = [ratios[blocks == b] for b in ids]
        meds = np.array([np.median(np.concatenate([members[k] for k in rng.integers(0, len(ids), len(ids))]))
                         for _ in range(resamples)])
    else:
        idx = rng.integers(0, len(ratios), (resamples, len(ratios)))
        meds = np.median(ratios[idx], axis=1)
    return float(np.percentile(meds, 50 * (1 - level))), float(np.percentile(meds, 50 * (1 + level)))


def measure_ratios(models: Mapping[str, Any], teacher: Any, input_shape: Any, settings: Mapping[str, Any], *,
                   limit: float, rounds: int = 30, max_rounds: int = 120, sessions: int = 1, pairs: bool = False,
                   pause_s: float = 0.0) -> dict[str, dict[str, Any]]:
    """Measure each model's latency ratio to ``teacher`` and decide whether it is at most ``limit``.

    Args:
        models: ``{name: ONNX bytes or path}`` of the candidates.
        teacher: ONNX bytes or path of the unpruned network.
        input_shape: ``(C, H, W)``.
        settings: Timing settings (a table's ``settings``); ``rounds`` is set here.
        limit: The budget as a ratio to the teacher's latency.
        rounds: Rounds of the first pass.
        max_rounds: Rounds at most for a candidate whose interval straddles ``limit``.
        sessions: Blocks per pass, each timed in freshly created onnxruntime sessions; with 3 or
            more the interval is a bootstrap over blocks (see the module docstring).
        pairs: Time each candidate alone with the teacher (the final check's protocol), block by
            block over the candidates so that one candidate's blocks are spread over the pass.
            Otherwise every candidate and the teacher are interleaved in the same rounds.
        pause_s: Seconds to wait between blocks (spreads a single candidate's blocks in time).

    Returns:
        Per name: ``ratio`` (median of per-round ratios), ``interval`` (95 % bootstrap interval of
        that median), ``iqr``, ``rounds``, ``ms`` and ``teacher_ms`` (medians of the per-round
        values), ``meets`` (the verdict), ``decided_by`` (``"interval"``, or ``"median"`` when the
        noise stayed wider than the margin after ``max_rounds``), ``block_ratios`` (the median of
        each block) with ``drift`` (their relative standard deviation) and ``load_average``.
    """
    from nas_prune.device import SessionRunner, TimingSettings, make_session, time_interleaved
    from nas_prune.latency._measure import to_onnx_bytes

    base = TimingSettings.from_json({**settings, "rounds": rounds})
    q = base.percentile
    sessions = max(1, int(sessions))
    onnx = {"__teacher__": to_onnx_bytes(teacher, input_shape), **{n: to_onnx_bytes(m, input_shape) for n, m in models.items()}}
    seeds = {n: i for i, n in enumerate(onnx)}
    kept: dict[str, SessionRunner] = {}

    def runner(name: str, fresh: bool) -> SessionRunner:
        if fresh or name not in kept:
            what = "teacher" if name == "__teacher__" else f"model {name!r}"
            kept[name] = SessionRunner(make_session(onnx[name], base, what=what), base, seed=seeds[name])
        return kept[name]

    per_round: dict[str, list[float]] = {n: [] for n in models}
    block_of: dict[str, list[int]] = {n: [] for n in models}
    teacher_ms: dict[str, list[float]] = {n: [] for n in models}
    own_ms: dict[str, list[float]] = {n: [] for n in models}
    todo = list(models)
    done: dict[str, dict[str, Any]] = {}
    taken, block = 0, 0
    while todo:
        batch = rounds if taken == 0 else min(rounds, max_rounds - taken)
        sizes = [len(c) for c in np.array_split(np.arange(batch), min(sessions, batch))]
        for size in sizes:
            if block > 0 and pause_s > 0:
                time.sleep(pause_s)
            settings_now = TimingSettings.from_json({**base.to_json(), "rounds": size})
            groups = [[n] for n in todo] if pairs else [todo]
            for group in groups:
                fresh = sessions > 1
                times = time_interleaved({k: runner(k, fresh) for k in ["__teacher__", *group]}, settings_now)
                t_round = np.array([np.percentile(r, q) for r in times["__teacher__"]])
                for name in group:
                    c_round = np.array([np.percentile(r, q) for r in times[name]])
                    per_round[name] += list(c_round / t_round)
                    block_of[name] += [block] * len(c_round)
                    teacher_ms[name] += list(t_round * 1e3)
                    own_ms[name] += list(c_round * 1e3)
            block += 1
        taken += batch
        left = []
        for name in todo:
            r, blocks = np.array(per_round[name]), np.array(block_of[name])
            lo, hi = _median_interval(r, blocks if sessions > 1 else None)
            med = float(np.median(r))
            decided = hi <= limit or lo > limit
            if decided or taken >= max_rounds:
                q25, q75 = np.percentile(r, [25, 75])
                meds = [float(np.median(r[blocks == b])) for b in np.unique(blocks)]
                done[name] = {"ratio": med, "interval": [lo, hi], "iqr": float(q75 - q25), "rounds": len(r),
                              "ms": float(np.median(own_ms[name])), "teacher_ms": float(np.median(teacher_ms[name])),
                              "meets": bool(hi <= limit) if decided else bool(med <= limit),
                              "decided_by": "interval" if decided else "median", "limit": float(limit),
                              "block_ratios": meds,
                              "drift": float(np.std(meds, ddof=1) / np.mean(meds)) if len(meds) > 1 else 0.0,
                              "load_average": [round(x, 2) for x in os.getloadavg()]}
            else:
                left.append(name)
        todo = left
    return {name: done[name] for name in models}
