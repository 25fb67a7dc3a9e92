"""Stage ``distill``: the picked architecture finished from the teacher (KD, CCKD or data-free DAFL), exported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nas_prune.distributed import is_main
from nas_prune.pipeline._config import RunConfig
from nas_prune.pipeline._context import RunContext, Stage

__all__ = ["STAGE", "finish", "finish_epochs", "finish_init", "reads_train"]


def reads_train(method: str) -> bool:
    """Whether the finishing ``method`` reads the training split (false for data-free ones, e.g. ``dafl``)."""
    from nas_prune.distill import get_method

    return get_method(method).reads_train_data


def _data_use(cfg: RunConfig) -> str:
    """The finish reads the training split unless its method is data-free.

    Data-free (:attr:`~nas_prune.distill.DistillMethod.reads_train_data` false, e.g. ``dafl``): no
    training image is read by the finish, its PruningNet or gates initialisation is not
    BatchNorm-recalibrated on them, and the validation and test splits only evaluate it.
    """
    if not reads_train(cfg.method):
        return ("no training image (data-free method): generated images only; validation split for the "
                "per-epoch accuracy, test split for the final accuracy")
    return ("training split (training, BatchNorm recalibration of a generated init), validation per epoch, test at "
            "the end")


def finish_epochs(ctx: RunContext) -> int:
    """The finish's epochs: ``--distill-epochs``, else the method's default for the training split's size."""
    from nas_prune.distill import default_epochs

    return ctx.cfg.distill_epochs or default_epochs(ctx.cfg.method, ctx.train_images)


def finish(ctx: RunContext, arch: Any, *, init: str, epochs: int | None, out_dir: Path, data: Any = None,
           measure_latency: bool = True) -> dict[str, Any]:
    """Distil ``arch`` from the run's teacher with the run's method and settings into ``out_dir``; its metrics.

    ``data``: another bundle than the run's (e.g. a training subset); ``measure_latency``: time the
    result against the teacher (the finish does; a brief fine-tune that only ranks need not).
    """
    from nas_prune.distill import DistillConfig, distill

    cfg, out = ctx.cfg, ctx.out
    return distill(ctx.space, arch, out / "teacher.pt", ctx.data if data is None else data, method=cfg.method,
                   init=init, epochs=epochs, seed=cfg.seed, out_dir=out_dir, table=out / "table_calibrated.json",
                   budget_ms=ctx.budget_ms, threads=cfg.threads, device=ctx.device, measure_latency=measure_latency,
                   config=DistillConfig(batch_size=cfg.distill_batch_size) if cfg.distill_batch_size else None)


def finish_init(ctx: RunContext) -> str:
    """The finish's initialisation (``--init``) as :func:`~nas_prune.distill.distill` takes it (files resolved)."""
    out, init = ctx.out, ctx.cfg.init
    return {"pnet": f"pnet:{out / 'pnet.pt'}", "gates": f"gates:{out / 'gates.json'}"}.get(init, init)


def run(ctx: RunContext) -> dict[str, Any]:
    """Distil ``arch.json`` from the teacher into ``distill/`` (``model.pt``, ``model.onnx``, ``metrics.json``)."""
    cfg, out = ctx.cfg, ctx.out
    ctx.log(f"distill: {cfg.method}, {finish_epochs(ctx)} epochs of {ctx.train_images:,} training images "
            "(--distill-epochs to change)")
    metrics = finish(ctx, ctx.arch, init=finish_init(ctx), epochs=cfg.distill_epochs, out_dir=out / "distill")
    if not is_main():
        return {}
    return {"accuracy": metrics["student"]["test_accuracy"], "speedup": metrics["speedup"]}


STAGE = Stage("distill", "the pick distilled from the teacher (KD, CCKD, DAFL), exported to ONNX", run, needs=("finalists", "select"),
              outputs=("distill/metrics.json", "distill/model.onnx"), reads=_data_use, everyone=True)
