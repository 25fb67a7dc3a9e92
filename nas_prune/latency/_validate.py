"""Checking a table against fresh end-to-end measurements of random architectures."""

from __future__ import annotations

import os
import random
import time
from typing import Any

import numpy as np

from nas_prune.device._runner import run_groups
from nas_prune.device._timing import TimingSettings
from nas_prune.latency._table import LatencyTable

__all__ = ["validate_table"]


def _scores(pred: np.ndarray, meas: np.ndarray) -> dict[str, float]:
    err = np.abs(pred - meas) / meas
    return {"within_5pct": float(np.mean(err <= 0.05)), "within_10pct": float(np.mean(err <= 0.10)),
            "median_abs_err": float(np.median(err)), "p95_abs_err": float(np.percentile(err, 95)),
            "max_abs_err": float(err.max())}


def validate_table(table: LatencyTable, space: Any, *, n: int = 50, seed: int = 0, group_size: int = 8,
                   rounds: int | None = None) -> dict[str, Any]:
    """Draw ``n`` random architectures, time each end to end with the table's settings, compare.

    Architectures are uniform over each gene's choices (``space.sample``). Each group of networks
    is timed interleaved with the reference network; the prediction for a network is
    ``table.relative(arch) * reference_ms_now`` (the reference timed in the same rounds), which is
    the drift-proof protocol. ``absolute`` reports the same comparison with the reference latency
    stored in the table instead (what a plain ``predict`` gives when the machine's speed moved).

    Returns:
        ``n``, ``within_5pct``, ``within_10pct``, ``median_abs_err``, ``p95_abs_err``, ``spearman``,
        ``predict_us`` (mean time of one ``predict`` call), ``absolute`` and context (threads,
        reference latencies, load average, seconds).
    """
    from scipy.stats import spearmanr

    from nas_prune.latency._measure import arch_onnx_bytes

    table.check_space(space)
    t0 = time.time()
    rng = random.Random(seed)
    archs = [space.sample(rng) for _ in range(n)]
    s = dict(table.settings)
    if rounds is not None:
        s["rounds"] = rounds
    settings = TimingSettings.from_json(s)
    base = space.build_model()
    nets = [{"id": f"v{i:04d}", "file": f"v{i:04d}", "channels": dict(a.channels)} for i, a in enumerate(archs)]

    def load(file: str) -> bytes:
        arch = space.full() if file == "reference" else archs[int(file[1:])]
        return arch_onnx_bytes(space, arch, base)

    records: list[dict[str, Any]] = []
    load_start = list(os.getloadavg())
    run_groups(load, "reference", nets, settings, group_size=group_size, done={}, on_group=records.extend)
    meas = np.array([r["round_ms"] for r in records])
    rel_pred = np.array([table.relative(a) for a in archs])
    pred = rel_pred * np.array([r["ref_round_ms"] for r in records])
    pred_abs = np.array([table.predict(a) for a in archs])
    loops = max(1, 20000 // max(1, n))
    t = time.perf_counter()
    for _ in range(loops):
        for a in archs:
            table.predict(a)
    predict_us = (time.perf_counter() - t) / (loops * len(archs)) * 1e6
    rho = float(spearmanr(pred, meas).statistic) if n > 2 else float("nan")
    flops = np.array([space.count(a)["flops"] for a in archs], dtype=float)
    flops_rho = float(spearmanr(flops, meas).statistic) if n > 2 else float("nan")
    out: dict[str, Any] = {"n": n, **_scores(pred, meas), "spearman": rho, "predict_us": predict_us,
                           "absolute": {**_scores(pred_abs, meas),
                                        "spearman": float(spearmanr(pred_abs, meas).statistic) if n > 2 else None}}
    out.update({
        "space": space.id, "threads": settings.threads, "provider": settings.provider, "seed": seed,
        "flops_spearman": flops_rho if np.isfinite(flops_rho) else None,
        "reference_ms_table": table.reference_ms,
        "reference_ms_now": float(np.median([r["ref_round_ms"] for r in records])),
        "measured_ms_range": [float(meas.min()), float(meas.max())],
        "table_date": table.meta.get("date"), "load_average_start": load_start,
        "load_average_end": list(os.getloadavg()), "seconds": round(time.time() - t0, 1),
    })
    if not np.isfinite(out["spearman"]):
        out["spearman"] = None
    return out
