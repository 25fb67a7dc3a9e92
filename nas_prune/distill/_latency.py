"""Measured onnxruntime latency of teacher and student, and the latency table's prediction."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

__all__ = ["load_table", "measure_pair"]


def load_table(table: str | os.PathLike[str] | Any) -> Any:
    """A ``LatencyTable`` from a path (or the table itself)."""
    from nas_prune.latency import LatencyTable

    return LatencyTable.load(Path(table)) if isinstance(table, (str, os.PathLike)) else table


def measure_pair(onnx_paths: Mapping[str, str | os.PathLike[str]], input_shape: tuple[int, ...], *,
                 threads: int = 1, table: Any | None = None) -> dict[str, dict[str, Any]]:
    """Time the models interleaved with :func:`nas_prune.latency.measure_interleaved`.

    With a ``table`` its measurement settings are used (threads included), so the measured
    ``round_ms`` is the statistic the table predicts. The first model is the reference of ``rel``.

    Returns ``{name: {"median_ms", "p10_ms", "iqr_ms", "round_ms", "rel", ...}}``.
    """
    try:
        from nas_prune.latency import measure_interleaved
    except ImportError:
        return _fallback_measure(onnx_paths, input_shape, threads=threads)
    paths = {k: str(v) for k, v in onnx_paths.items()}
    if table is None:
        return measure_interleaved(paths, tuple(input_shape), threads=threads)
    s = table.settings
    return measure_interleaved(paths, tuple(input_shape), threads=int(s["threads"]),
                               runs_per_round=int(s["runs_per_round"]), warmup=int(s["warmup"]),
                               provider=str(s["provider"]), batch=int(s["batch"]), opt_level=str(s["opt_level"]),
                               percentile=float(s["percentile"]), provider_options=s.get("provider_options"))


def _fallback_measure(onnx_paths: Mapping[str, str | os.PathLike[str]], input_shape: tuple[int, ...], *,
                      threads: int, rounds: int = 20, runs: int = 50) -> dict[str, dict[str, Any]]:
    """Interleaved timing used only while ``nas_prune.latency`` is missing (same robust statistics)."""
    import time

    import numpy as np
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sessions = {k: ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"]) for k, p in onnx_paths.items()}
    x = np.random.default_rng(0).standard_normal((1, *input_shape)).astype(np.float32)
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for s in sessions.values():
        for _ in range(10):
            s.run(None, {"input": x})
    for _ in range(rounds):
        for k, s in sessions.items():
            for _ in range(runs):
                t0 = time.perf_counter()
                s.run(None, {"input": x})
                times[k].append((time.perf_counter() - t0) * 1e3)
    out = {}
    for k, t in times.items():
        a = np.asarray(t)
        q10, q25, q50, q75 = np.percentile(a, [10, 25, 50, 75])
        out[k] = {"median_ms": float(q50), "p10_ms": float(q10), "iqr_ms": float(q75 - q25), "runs": int(a.size),
                  "threads": threads, "protocol": "fallback (nas_prune.latency missing)"}
    return out
