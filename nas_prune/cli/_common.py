"""Option parsing shared by the commands."""

from __future__ import annotations

import os
from typing import Any

import typer

from nas_prune._io import read_json
from nas_prune.data import Preprocess
from nas_prune.space import Architecture

__all__ = ["load_arch", "MEAN_OPTION", "STD_OPTION", "RESIZE_OPTION", "AUGMENT_OPTION", "WORKERS_OPTION",
           "STRICT_DATA_OPTION", "preprocess_for"]

MEAN_OPTION = typer.Option(None, "--mean", help="Input mean the network was trained with: one value or one per "
                           "channel (0.286 or 0.485,0.456,0.406); default: the teacher checkpoint's, else 0.5.")
STD_OPTION = typer.Option(None, "--std", help="Input std, as --mean (default: the teacher checkpoint's, else 0.25).")
RESIZE_OPTION = typer.Option(None, "--resize", help="Image folders: resize the shorter side to this, then centre-crop "
                             "--input-size (default: --input-size / 0.875, e.g. 256 for 224).")
AUGMENT_OPTION = typer.Option(None, "--augment", help="Training augmentation: none | standard (random resized crop + "
                              "flip from 128 px, padded random crop + flip below); default: standard for image "
                              "folders and CIFAR-10, none for digits and Fashion-MNIST. Evaluation is never augmented.")
WORKERS_OPTION = typer.Option(None, "--workers", help="Image folders: loader worker processes (default: the cores "
                              "this process may use; 0 decodes in the training process).")
STRICT_DATA_OPTION = typer.Option(False, "--strict-data", help="Any unreadable image is an error (default: skipped, "
                                  "logged and counted, up to 0.1 %% of a split).")


def preprocess_for(mean: str | None, std: str | None, resize: int | None,
                   teacher: str | os.PathLike[str] | None = None) -> Preprocess:
    """The data's preprocessing: the options over what a nas-prune teacher checkpoint recorded (else the default)."""
    base = None
    if teacher is not None:
        from nas_prune.export import load_checkpoint

        recorded = load_checkpoint(teacher, what="teacher checkpoint").get("preprocess")
        base = Preprocess.from_json(recorded) if recorded is not None else None
    return Preprocess.from_options(mean, std, resize, base=base)


def load_arch(path: str | os.PathLike[str]) -> Architecture:
    """The architecture in ``path``: an architecture file, or a search result (its ``best.architecture``).

    So the output of ``nas-prune search -o best.json`` (or ``nas-prune nni``) can be passed straight
    to every ``--arch`` option.
    """
    obj: Any = read_json(path, what="architecture")
    best = obj.get("best") if isinstance(obj, dict) and "channels" not in obj else None
    if isinstance(best, dict) and "architecture" in best:
        arch = Architecture.from_json(best["architecture"], source=f"search result {path} (best.architecture)")
    else:
        arch = Architecture.from_json(obj, source=f"architecture {path}")
    return Architecture(arch.space, arch.channels, source=str(path))
