"""Measured onnxruntime latency of teacher and student, and the latency table's prediction."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

__all__ = ["load_table", "measure_pair"]


def load_table(table: str | os.PathLike[str] | Any, space: Any = None) -> Any:
    """A ``LatencyTable`` from a path (or the table itself), as calibrated on this machine.

    Goes through :func:`nas_prune.latency.calibrated_table` like every command that predicts, so the
    student's predicted milliseconds are those of the search and of ``nas-prune latency predict``.
    """
    from nas_prune.latency import LatencyTable, calibrated_table

    if not isinstance(table, (str, os.PathLike, LatencyTable)):
        return table
    return calibrated_table(Path(table) if not isinstance(table, LatencyTable) else table, space)


def measure_pair(onnx_paths: Mapping[str, str | os.PathLike[str]], input_shape: tuple[int, ...], *,
                 threads: int = 1, table: Any | None = None) -> dict[str, dict[str, Any]]:
    """Time the models interleaved with :func:`nas_prune.latency.measure_interleaved`.

    With a ``table`` its measurement settings are used (threads included), so the measured
    ``round_ms`` is the statistic the table predicts. The first model is the reference of ``rel``.

    Returns ``{name: {"median_ms", "p10_ms", "iqr_ms", "round_ms", "rel", ...}}``.
    """
    from nas_prune.latency import measure_interleaved

    paths = {k: str(v) for k, v in onnx_paths.items()}
    if table is None:
        return measure_interleaved(paths, tuple(input_shape), threads=threads)
    s = table.settings
    return measure_interleaved(paths, tuple(input_shape), threads=int(s["threads"]),
                               runs_per_round=int(s["runs_per_round"]), warmup=int(s["warmup"]),
                               provider=str(s["provider"]), batch=int(s["batch"]), opt_level=str(s["opt_level"]),
                               percentile=float(s["percentile"]), provider_options=s.get("provider_options"))
