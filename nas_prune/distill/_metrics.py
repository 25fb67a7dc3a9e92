"""The metrics of a finished distillation: accuracies, measured latency, speed-up and budget.

Written to ``out_dir/metrics.json`` (format :data:`METRICS_FORMAT`) once the student and the teacher
are exported as ONNX next to it.
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any

from torch import nn
from torch.utils.data import Dataset

from nas_prune._io import write_json
from nas_prune.data import DataBundle
from nas_prune.distill._latency import load_table, measure_pair
from nas_prune.space import Architecture, ChannelSpace
from nas_prune.training import evaluate

__all__ = ["METRICS_FORMAT", "write_metrics"]

METRICS_FORMAT = "nas-prune/distill-metrics"

_TEACHER_ACCURACY: "weakref.WeakKeyDictionary[nn.Module, dict[int, float]]" = weakref.WeakKeyDictionary()


def _teacher_accuracy(teacher: nn.Module, test: Dataset) -> float:
    """Test accuracy of the (frozen) teacher, computed once per teacher and test split."""
    memo = _TEACHER_ACCURACY.setdefault(teacher, {})
    if id(test) not in memo:
        memo[id(test)] = evaluate(teacher, test)
    return memo[id(test)]


def write_metrics(space: ChannelSpace, *, arch: Architecture, student: nn.Module, teacher: nn.Module,
                  data: DataBundle, out: Path, key: dict[str, Any], history: list[dict[str, Any]], seconds: float,
                  table: Any, budget_ms: float | None, threads: int, measure_latency: bool,
                  kept: dict[str, Any] | None = None) -> dict[str, Any]:
    """Evaluate student and teacher, time their ONNX exports in ``out``, and write ``out/metrics.json``.

    Args:
        space: The space of ``arch``.
        arch: The student's architecture.
        student: The finished student (on the CPU).
        teacher: The teacher (on the CPU).
        data: The data whose validation and test splits are evaluated.
        out: The output folder holding ``model.onnx`` and ``teacher.onnx``.
        key: The run's identity (space, arch, method, init, epochs, seed, config), copied into the metrics.
        history: One record per trained epoch.
        seconds: Training time.
        table: Latency table (path or ``LatencyTable``) or ``None``.
        budget_ms: Latency budget (ms) or ``None``.
        threads: onnxruntime intra-op threads for the measurement.
        measure_latency: Time both ONNX models.
        kept: Which epoch was kept and why.

    Returns:
        The metrics written.
    """
    s_count, t_count = space.count(arch), space.count(space.full())
    tab = load_table(table, space) if table is not None else None
    if tab is not None:
        tab.check_space(space)
    metrics: dict[str, Any] = {
        "format": METRICS_FORMAT, "version": 1, "data": data.name, **key,
        "train_seconds": seconds, "history": history, "kept": kept,
        "student": {"test_accuracy": evaluate(student, data.test), "val_accuracy": evaluate(student, data.val), **s_count},
        "teacher": {"test_accuracy": _teacher_accuracy(teacher, data.test),
                    "val_accuracy": _teacher_accuracy(teacher, data.val), **t_count},
        "latency": None, "speedup": None, "predicted_ms": None, "budget_ms": budget_ms, "budget_holds": None,
    }
    stat = "median_ms"
    if measure_latency:
        lat = measure_pair({"teacher": out / "teacher.onnx", "student": out / "model.onnx"}, space.input_shape,
                           threads=threads, table=tab)
        # The table predicts (and the search budgets) its own statistic: per-round low percentile.
        stat = "round_ms" if "round_ms" in lat["student"] else "median_ms"
        metrics["latency"] = {"statistic": stat, **lat}
        for who in ("student", "teacher"):
            metrics[who]["latency_ms"] = lat[who][stat]
            metrics[who]["median_ms"] = lat[who]["median_ms"]
            metrics[who]["iqr_ms"] = lat[who]["iqr_ms"]
        metrics["speedup"] = lat["teacher"][stat] / lat["student"][stat]
        metrics["speedup_median"] = lat["teacher"]["median_ms"] / lat["student"]["median_ms"]
    if tab is not None:
        from nas_prune.latency import calibration_label

        metrics["predicted_ms"] = float(tab.predict(arch))  # on the calibration's clock (search, latency predict)
        metrics["calibration"] = calibration_label(tab)
        if measure_latency:  # rescaled to the table's reference network timed just now (machine drift)
            metrics["predicted_ms_now"] = float(tab.predict(arch, reference_ms=tab.measure_reference(space)))
    if budget_ms is not None:
        if metrics["latency"] is not None:
            # a budget in ms is on the table's clock; the machine's speed drifts, the ratio does not
            limit = budget_ms / float(tab.predict(space.full())) if tab is not None else None
            metrics["budget_holds"] = bool(1 / metrics["speedup"] <= limit) if limit is not None \
                else bool(metrics["student"]["latency_ms"] <= budget_ms)
        if metrics["predicted_ms"] is not None:
            metrics["budget_holds_predicted"] = bool(metrics["predicted_ms"] <= budget_ms)
    write_json(out / "metrics.json", metrics)
    return metrics
