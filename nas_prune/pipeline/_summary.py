"""``summary.json`` of ``nas-prune run``: every stage's result and the measured verdict, in one file."""

from __future__ import annotations

import platform
from typing import Any

import torch

from nas_prune._io import read_json
from nas_prune.distributed import world
from nas_prune.pipeline._check import latency_verdict
from nas_prune.pipeline._context import RunContext
from nas_prune.pipeline.stages import STAGES
from nas_prune.pipeline.stages.distill import reads_train

__all__ = ["ARTIFACTS", "build_summary"]

#: The run directory's files, by role (the summary's ``artifacts``).
ARTIFACTS = {
    "config": "config.json", "space": "space.json", "teacher": "teacher.pt", "teacher_onnx": "teacher.onnx",
    "table": "table.json", "gates": "gates.json", "pnet": "pnet.pt", "arch": "arch.json",
    "trials": "trials.json", "search": "search.json", "model": "distill/model.pt",
    "model_onnx": "distill/model.onnx", "distill_metrics": "distill/metrics.json",
    "latency_check": "latency_check.json", "report": "report.html",
    "table_calibrated": "table_calibrated.json", "finalists": "finalists.json",
    "final_check": "final_check.json",
}


def _teacher(ctx: RunContext, teacher: dict[str, Any], measured_ms: float) -> dict[str, Any]:
    res = ctx.results["teacher"]
    return {"accuracy": teacher["test_accuracy"], "params": teacher["params"], "flops": teacher["flops"],
            "measured_latency_ms": measured_ms, "val_accuracy": res.get("val_accuracy"),
            "source": res.get("source", "trained from scratch"), "epochs": res.get("epochs"),
            "weights": res.get("weights"), "learned": res.get("learned")}


def _dataset(ctx: RunContext) -> dict[str, Any]:
    """Where each split came from, the training augmentation, and the unreadable images this process skipped."""
    data = ctx.data
    return {"splits": data.splits, "augment": data.augment, "train_images": len(data.train),  # type: ignore[arg-type]
            "workers": getattr(data.train, "workers", None), "bad_files": data.bad_files()}


def _training_processes(ctx: RunContext) -> dict[str, Any]:
    """The training processes (torchrun): ``batch_size`` is the global batch, ``batch_size / processes`` each."""
    w = world()
    return {"processes": w.size, "batch_size": ctx.cfg.batch_size,
            "per_process_batch": (ctx.cfg.batch_size or 0) // w.size,
            "backend": torch.distributed.get_backend() if w.active else None}


def build_summary(ctx: RunContext, stage_seconds: dict[str, float]) -> dict[str, Any]:
    """The run's summary from its context (every stage finished) and the cache's seconds per stage."""
    cfg, out, results = ctx.cfg, ctx.out, ctx.results
    metrics = read_json(out / "distill" / "metrics.json", what="distillation metrics")
    final_check = read_json(out / "final_check.json", what="final latency check")
    student = metrics["student"]
    return {
        "model": cfg.model, "data": cfg.data, "budget": cfg.budget, "budget_ms": ctx.budget_ms,
        "device": f"{platform.processor() or platform.machine()}, {cfg.threads} thread(s), onnxruntime CPU",
        "teacher": _teacher(ctx, metrics["teacher"], final_check["teacher_ms"]),  # measured in the same rounds
        "preprocess": cfg.preprocess.to_json(),
        "dataset": _dataset(ctx),
        "final": {"accuracy": student["test_accuracy"], "params": student["params"], "flops": student["flops"],
                  "measured_latency_ms": final_check["ms"],
                  "predicted_latency_ms": metrics.get("predicted_ms_now") or metrics.get("predicted_ms"),
                  "channels": dict(ctx.arch.channels)},
        **latency_verdict(final_check),  # the verdict is the measurement (nas_prune.pipeline._check)
        "teacher_predicted_latency_ms": results["budget"]["teacher_predicted_ms"],
        "gates": results["gates"].get("runs"),  # the share of non-zero gates each target ratio ended with
        "pruningnet_check": results["pruningnet"].get("uniform_check"),  # uniform widths: wider must score higher
        "search": results["search"],
        "finalists": results["finalists"],
        "select": results.get("select", {"mode": "score"}),  # the pick's decision (pipeline._select)
        # a final network over the budget on a quiet machine, shrunk and finished again (pipeline._repair)
        "repairs": results["check"].get("repairs") or [],
        "table": results["latency"],
        "calibration": results["calibration"],
        "stage_seconds": stage_seconds,
        "artifacts": {**ARTIFACTS, **({"select": "select.json"} if (out / "select.json").exists() else {})},
        "finish": {"method": cfg.method, "init": cfg.init, "data_free": not reads_train(cfg.method)},
        # which splits each stage reads, in words (stages that only read the run's own files are left out)
        "data_use": {s.name: s.data_use(cfg) for s in STAGES if s.data_use(cfg) != "none"},
        "training_processes": _training_processes(ctx),
    }
