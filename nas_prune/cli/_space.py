"""Commands of the first stage: models, spaces and architectures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from nas_prune.cli._common import load_arch
from nas_prune.models import TESTED_MODELS, list_models
from nas_prune.space import ChannelSpace, materialize

__all__ = ["register"]

arch_app = typer.Typer(help="Sample, inspect and materialize architectures of a space.", no_args_is_help=True)


def models(all_torchvision: bool = typer.Option(False, "--all", help="Also list every torchvision classifier.")) -> None:
    """List supported models (tested ones are marked)."""
    for name in list_models(all_torchvision=all_torchvision):
        typer.echo(f"{name}{'  (tested)' if name in TESTED_MODELS else ''}")


def space(
    model: str = typer.Argument(..., help="Model name (see 'nas-prune models') or package.module:factory."),
    input_size: int = typer.Option(32, help="Input height and width."),
    num_classes: int = typer.Option(10, help="Classifier outputs."),
    round_to: int = typer.Option(8, help="Channel counts are multiples of this."),
    min_ratio: float = typer.Option(0.1, help="Smallest fraction of a group's width a gene may keep."),
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the space JSON."),
) -> None:
    """Derive the channel search space of MODEL and write it as JSON (checked: its narrowest and a random
    architecture are materialised and run; a model nas-prune cannot prune is refused in one line)."""
    from nas_prune.space import TRACE_SECONDS, verify_space

    sp = ChannelSpace.from_name(model, input_size=input_size, num_classes=num_classes,
                                round_to=round_to, min_ratio=min_ratio, trace_seconds=TRACE_SECONDS)
    verify_space(sp)
    sp.save(output)
    typer.echo(f"{sp.id}: {len(sp.genes)} genes, {len(sp.searchable_genes)} searchable -> {output}")


@arch_app.command("sample")
def arch_sample(
    space_file: Path = typer.Option(..., "--space", help="Space JSON."),
    seed: int = typer.Option(0, help="Random seed."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the architecture here too."),
) -> None:
    """Print a random valid architecture of the space (uniform over each gene's choices)."""
    sp = ChannelSpace.load(space_file)
    arch = sp.sample(seed)
    if output:
        arch.save(output)
    typer.echo(json.dumps(arch.to_json(), indent=2))


@arch_app.command("info")
def arch_info(
    space_file: Path = typer.Option(..., "--space", help="Space JSON."),
    arch_file: Path = typer.Option(..., "--arch", help="Architecture JSON, or a search result (best.json)."),
) -> None:
    """Print the parameters and FLOPs of an architecture next to the full model's."""
    sp = ChannelSpace.load(space_file)
    arch = load_arch(arch_file)
    typer.echo(json.dumps({"arch": sp.count(arch), "full": sp.count(sp.full())}))


@arch_app.command("materialize")
def arch_materialize(
    space_file: Path = typer.Option(..., "--space", help="Space JSON."),
    arch_file: Path = typer.Option(..., "--arch", help="Architecture JSON, or a search result (best.json)."),
    output: Path = typer.Option(..., "-o", "--output", help="ONNX file (or .pt for a state_dict)."),
) -> None:
    """Build the pruned model of ARCH (random weights) and write it as ONNX."""
    from nas_prune.export import export_onnx, save_state_dict

    sp = ChannelSpace.load(space_file)
    arch = load_arch(arch_file)
    model = materialize(sp.build_model(), arch, space=sp)
    if output.suffix == ".pt":
        save_state_dict(model, output)
    else:
        export_onnx(model, sp.example_input(), output)
    counts = sp.count(arch)
    typer.echo(f"{output}: {counts['params']} params, {counts['flops']} FLOPs")


def register(app: typer.Typer) -> None:
    app.command()(models)
    app.command("space")(space)
    app.add_typer(arch_app, name="arch")
