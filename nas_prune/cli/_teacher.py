"""``nas-prune train``: train the base model of a space (the teacher), with per-epoch resume."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Optional

import typer

from nas_prune.cli import _common as opts
from nas_prune.cli._common import preprocess_for
from nas_prune.space import ChannelSpace
from nas_prune.teacher import train_teacher as _train_teacher
from nas_prune.training import DEVICE_HELP

__all__ = ["register"]


def __getattr__(name: str) -> Any:
    # Deprecated: ``train_teacher`` lives in nas_prune.teacher (importing it from the CLI made the
    # pipeline depend on the command line). Remove once no caller imports it from here.
    if name == "train_teacher":
        warnings.warn("nas_prune.cli._teacher.train_teacher moved: import it from nas_prune.teacher",
                      DeprecationWarning, stacklevel=2)
        return _train_teacher
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def train(
    space_file: Path = typer.Option(..., "--space", help="Space JSON."),
    data: str = typer.Option("digits", help="digits | fashion-mnist[:root] | cifar10:root | imagefolder:root"),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Start from your trained weights of the space's model "
                                           "(any usual layout): evaluated, and fine-tuned for --epochs (default 0)."),
    mean: Optional[str] = opts.MEAN_OPTION,
    std: Optional[str] = opts.STD_OPTION,
    resize: Optional[int] = opts.RESIZE_OPTION,
    augment: Optional[str] = opts.AUGMENT_OPTION,
    workers: Optional[int] = opts.WORKERS_OPTION,
    strict_data: bool = opts.STRICT_DATA_OPTION,
    epochs: Optional[int] = typer.Option(None, help="Training epochs (default: 10 from scratch; 0 from --weights, "
                                         "or a transfer fine-tune for a new classifier)."),
    batch_size: int = typer.Option(64, help="Batch size."),
    lr: Optional[float] = typer.Option(None, help="Peak learning rate (one-cycle SGD; default 0.05 from scratch, "
                                       "0.005 from --weights)."),
    train_subset: int = typer.Option(None, help="Use only this many training images."),
    seed: int = typer.Option(0, help="Random seed."),
    device: str = typer.Option("auto", help=f"Where to train: {DEVICE_HELP}."),
    output: Path = typer.Option(..., "-o", "--output", help="Checkpoint to write (teacher.pt)."),
) -> None:
    """Train the unpruned model of a space (the teacher), or start from your trained weights; resumes from OUTPUT.partial."""
    from nas_prune.data import load_data
    from nas_prune.teacher import prepare_teacher
    from nas_prune.training import resolve_device

    resolve_device(device)
    sp = ChannelSpace.load(space_file)
    bundle = load_data(data, input_size=sp.input_shape[-1], train_subset=train_subset, seed=seed,
                       preprocess=preprocess_for(mean, std, resize),
                       augment=augment, workers=workers, strict=strict_data)
    if weights is None and epochs is None:
        epochs = 10
    result = prepare_teacher(sp, bundle, output, weights=weights, epochs=epochs, batch_size=batch_size, lr=lr,
                             seed=seed, device=device)
    typer.echo(json.dumps({"val_accuracy": result["val_accuracy"], "test_accuracy": result["test_accuracy"]}))


def register(app: typer.Typer) -> None:
    app.command("train")(train)
