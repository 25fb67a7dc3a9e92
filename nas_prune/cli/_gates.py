"""``nas-prune gates`` (learn gates from random weights), ``prune`` (gates + budget -> architecture)
and ``gates-nni`` (the gate prior as an NNI search space)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from nas_prune.cli import _common as opts
from nas_prune.cli._common import preprocess_for
from nas_prune.errors import NasPruneError
from nas_prune.training import DEVICE_HELP

__all__ = ["register"]


def _floats(text: str, what: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise NasPruneError(f"--{what} {text!r} is not a comma-separated list of numbers, e.g. 0.3,0.5,0.7") from None


def gates(
    space_file: Path = typer.Option(..., "--space", help="Space JSON."),
    data: str = typer.Option("digits", help="digits | fashion-mnist[:root] | cifar10:root | imagefolder:root"),
    ratios: str = typer.Option("0.3,0.5,0.7", help="Target fractions of non-zero gates, comma-separated."),
    mean: Optional[str] = opts.MEAN_OPTION,
    std: Optional[str] = opts.STD_OPTION,
    resize: Optional[int] = opts.RESIZE_OPTION,
    augment: Optional[str] = opts.AUGMENT_OPTION,
    workers: Optional[int] = opts.WORKERS_OPTION,
    strict_data: bool = opts.STRICT_DATA_OPTION,
    seeds: str = typer.Option("0", help="Seeds of the random weights, comma-separated."),
    epochs: Optional[int] = typer.Option(None, help="Epochs per run (default: the paper's, scaled to the data)."),
    gamma: Optional[float] = typer.Option(None, help="Regulariser weight (default: 0.5, or 0.05 for >100 classes)."),
    lr: float = typer.Option(0.01, help="Adam learning rate of the gates."),
    batch_size: int = typer.Option(128, help="Batch size."),
    train_subset: Optional[int] = typer.Option(None, help="Use only this many training images."),
    device: str = typer.Option("auto", help=f"Where the gates learn: {DEVICE_HELP}."),
    amp: bool = typer.Option(True, "--amp/--no-amp", help="bfloat16 autocast on CUDA (ignored on the CPU)."),
    output: Path = typer.Option(..., "-o", "--output", help="Gates JSON to write."),
) -> None:
    """Learn channel gates on the randomly initialised model (Pruning from Scratch); resumes from OUTPUT.partial."""
    from nas_prune.data import load_data
    from nas_prune.gates import learn_gates
    from nas_prune.space import ChannelSpace
    from nas_prune.training import resolve_device

    resolve_device(device)  # an unknown or absent device is refused before anything is loaded
    sp = ChannelSpace.load(space_file)
    seed_list = [int(s) for s in _floats(seeds, "seeds")]
    bundle = load_data(data, input_size=sp.input_shape[-1], train_subset=train_subset,
                       seed=seed_list[0] if seed_list else 0, preprocess=preprocess_for(mean, std, resize),
                       augment=augment, workers=workers, strict=strict_data)
    partial = output.with_name(output.name + ".partial")
    result = learn_gates(sp, bundle, ratios=_floats(ratios, "ratios"), seeds=seed_list, epochs=epochs,
                         gamma=gamma, lr=lr, batch_size=batch_size, checkpoint=partial, device=device, amp=amp)
    result.save(output)
    partial.unlink(missing_ok=True)
    runs = [{"ratio": r.ratio, "seed": r.seed, "val_accuracy": round(r.val_accuracy, 4),
             "nonzero_fraction": round(r.nonzero_fraction, 4), "met_ratio": r.met_ratio} for r in result.runs]
    typer.echo(json.dumps({"gates": str(output), "runs": runs}))


def prune(
    gates_file: Path = typer.Option(..., "--gates", help="Gates JSON (nas-prune gates)."),
    space_file: Path = typer.Option(..., "--space", help="Space JSON the gates were learned on."),
    budget: str = typer.Option(..., help="flops:0.5 | params:0.5 | flops:120M | latency:TABLE.json:1.8ms | latency:TABLE.json:0.5x (of the unpruned model)"),
    ratio: Optional[float] = typer.Option(None, help="Rank channels by this ratio's gates only (default: all)."),
    output: Path = typer.Option(..., "-o", "--output", help="Architecture JSON to write."),
) -> None:
    """Keep the globally top gates that fit BUDGET (binary search); write the architecture."""
    from nas_prune.errors import SpaceMismatchError
    from nas_prune.gates import Budget, Gates
    from nas_prune.space import ChannelSpace

    sp = ChannelSpace.load(space_file)
    g = Gates.load(gates_file)
    try:
        g.check_space(sp)
    except SpaceMismatchError as exc:
        raise SpaceMismatchError(f"{gates_file} does not match {space_file}: {exc}") from None
    arch = g.prune(sp, Budget.parse(budget), ratio=ratio)
    arch.save(output)
    full, got = sp.count(sp.full()), sp.count(arch)
    typer.echo(json.dumps({"arch": str(output), "flops": got["flops"], "params": got["params"],
                           "flops_ratio": round(got["flops"] / full["flops"], 4),
                           "params_ratio": round(got["params"] / full["params"], 4)}))


def gates_nni(
    gates_file: Path = typer.Option(..., "--gates", help="Gates JSON."),
    space_file: Path = typer.Option(..., "--space", help="Space JSON."),
    kind: str = typer.Option("qnormal", help="qnormal (prior mean, sigma) or quniform (narrowed range)."),
    output: Path = typer.Option(..., "-o", "--output", help="NNI search-space JSON to write."),
) -> None:
    """Write an NNI search space whose genes follow the gate prior."""
    from nas_prune._io import write_json
    from nas_prune.gates import Gates
    from nas_prune.space import ChannelSpace

    sp = ChannelSpace.load(space_file)
    nni_space = Gates.load(gates_file).nni_search_space(sp, kind=kind)
    write_json(output, nni_space)
    typer.echo(f"{output}: {len(nni_space)} genes ({kind})")


def register(app: typer.Typer) -> None:
    app.command("gates")(gates)
    app.command("prune")(prune)
    app.command("gates-nni")(gates_nni)
