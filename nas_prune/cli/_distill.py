"""``nas-prune distill``: finish an architecture by distillation from the teacher and measure the speed-up."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from nas_prune.cli import _common as opts
from nas_prune.cli._common import load_arch, preprocess_for
from nas_prune.distill import get_init_kind, get_method, init_help, method_help
from nas_prune.space import ChannelSpace
from nas_prune.training import DEVICE_HELP

__all__ = ["register"]


def distill_command(
    space_file: Path = typer.Option(..., "--space", help="Space JSON."),
    arch_file: Path = typer.Option(..., "--arch", help="Architecture JSON, or a search result (best.json)."),
    teacher: Path = typer.Option(..., "--teacher", help="Teacher: a checkpoint written by nas-prune, or your trained "
                                 "weights of the space's model (a state_dict, or a dict holding one)."),
    data: str = typer.Option("digits", help="digits | fashion-mnist[:root] | cifar10:root | imagefolder:root"),
    mean: Optional[str] = opts.MEAN_OPTION,
    std: Optional[str] = opts.STD_OPTION,
    resize: Optional[int] = opts.RESIZE_OPTION,
    augment: Optional[str] = opts.AUGMENT_OPTION,
    workers: Optional[int] = opts.WORKERS_OPTION,
    strict_data: bool = opts.STRICT_DATA_OPTION,
    init: str = typer.Option("teacher", help=f"Student init: {init_help()}"),
    method: str = typer.Option("kd", help=f"Distillation method: {method_help()}"),
    epochs: int = typer.Option(None, min=1, help="Training epochs (default: about 160k training images' worth, "
                                                 "4-30 epochs; data-free: 600 steps)."),
    seed: int = typer.Option(0, help="Random seed."),
    train_subset: int = typer.Option(None, help="Use only this many training images."),
    table: Path = typer.Option(None, help="Latency table: the student's predicted latency goes into metrics."),
    budget_ms: float = typer.Option(None, help="Latency budget in ms: metrics say whether it holds."),
    threads: int = typer.Option(1, help="onnxruntime threads for the latency measurement (as the table's)."),
    device: str = typer.Option("auto", help=f"Where student and teacher train: {DEVICE_HELP} (latency is still "
                                            "measured on the CPU)."),
    keep_best: bool = typer.Option(True, "--keep-best/--keep-last",
                                   help="Keep the epoch with the best validation accuracy (not for data-free methods)."),
    patience: int = typer.Option(None, min=1, help="Stop when validation accuracy has not risen for this many epochs."),
    output: Path = typer.Option(..., "-o", "--output", help="Output folder."),
) -> None:
    """Train the pruned student against its teacher; write model.pt, arch.json, model.onnx, metrics.json.

    Re-running with the same arguments resumes after the last finished epoch.
    """
    from nas_prune.data import load_data
    from nas_prune.distill import DistillConfig, distill
    from nas_prune.export import load_model
    from nas_prune.training import resolve_device

    get_method(method), get_init_kind(init)  # a typo fails before the data is loaded
    resolve_device(device)  # an absent GPU is refused before anything is loaded
    sp = ChannelSpace.load(space_file)
    arch = load_arch(arch_file)
    sp.validate(arch)
    teacher_model = load_model(sp, teacher, what="teacher checkpoint")
    bundle = load_data(data, input_size=sp.input_shape[-1], train_subset=train_subset, seed=seed,
                       preprocess=preprocess_for(mean, std, resize, teacher),
                       augment=augment, workers=workers, strict=strict_data)
    metrics = distill(sp, arch, teacher_model, bundle, method=method, init=init, epochs=epochs, seed=seed,
                      out_dir=output, table=table, budget_ms=budget_ms, threads=threads, device=device,
                      config=DistillConfig(keep_best=keep_best, patience=patience))
    summary = {k: metrics.get(k) for k in ("speedup", "predicted_ms", "budget_holds", "calibration")}
    summary["student_accuracy"] = metrics["student"]["test_accuracy"]
    summary["teacher_accuracy"] = metrics["teacher"]["test_accuracy"]
    summary["kept"] = metrics["kept"]
    typer.echo(json.dumps(summary))


def register(app: typer.Typer) -> None:
    app.command("distill")(distill_command)
