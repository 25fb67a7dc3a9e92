"""``nas-prune pruningnet train|eval|export``: MetaPruning's weight-sharing evaluator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from nas_prune.cli import _common as opts
from nas_prune.cli._common import load_arch, preprocess_for
from nas_prune.errors import InvalidArchitectureError, NasPruneError
from nas_prune.pruningnet import generator_names
from nas_prune.space import Architecture, ChannelSpace
from nas_prune.training import DEVICE_HELP

__all__ = ["register", "parse_arch"]

pruningnet_app = typer.Typer(help="PruningNet (MetaPruning): score any candidate of a space in seconds.",
                             no_args_is_help=True)


def parse_arch(value: str, space: ChannelSpace) -> Architecture:
    """An architecture JSON file, ``full`` or ``uniform:RATIO`` (checked against ``space``)."""
    if value == "full":
        arch = space.full()
    elif value.startswith("uniform:"):
        try:
            ratio = float(value.split(":", 1)[1])
        except ValueError:
            raise InvalidArchitectureError(f"--arch {value!r}: write uniform:RATIO with 0 < RATIO <= 1") from None
        if not 0 < ratio <= 1:
            raise InvalidArchitectureError(f"--arch {value!r}: the ratio must be in (0, 1]")
        arch = space.uniform(ratio)
    else:
        arch = load_arch(value)
    space.validate(arch)
    return arch


def _load(pnet_file: Path, space_file: Optional[Path]):  # noqa: ANN202 (lazy torch import)
    from nas_prune.pruningnet import PruningNet

    space = ChannelSpace.load(space_file) if space_file is not None else None
    pnet = PruningNet.load(pnet_file, space=space)
    return pnet, pnet.space


@pruningnet_app.command("train")
def train(
    space_file: Path = typer.Option(..., "--space", help="Space JSON."),
    data: str = typer.Option("digits", help="digits | fashion-mnist[:root] | cifar10:root | imagefolder:root"),
    teacher: Optional[Path] = typer.Option(None, "--teacher", help="Trained teacher (nas-prune's checkpoint, or your weights "
                                           "of the space's model): initial weights, L1 channel order."),
    mean: Optional[str] = opts.MEAN_OPTION,
    std: Optional[str] = opts.STD_OPTION,
    resize: Optional[int] = opts.RESIZE_OPTION,
    augment: Optional[str] = opts.AUGMENT_OPTION,
    workers: Optional[int] = opts.WORKERS_OPTION,
    strict_data: bool = opts.STRICT_DATA_OPTION,
    gates_file: Optional[Path] = typer.Option(None, "--gates", help="Gates JSON: --prior-mix of the candidates from its priors."),
    epochs: Optional[int] = typer.Option(None, help="Epochs (default: from the training split's size, 1-10; see default_epochs)."),
    sandwich: bool = typer.Option(True, "--sandwich/--no-sandwich", help="Each step: full + smallest + --n-random candidates (else one, as MetaPruning)."),
    n_random: int = typer.Option(2, help="Random candidates per step under the sandwich rule."),
    inplace_distill: bool = typer.Option(True, "--inplace-distill/--no-inplace-distill", help="Smaller candidates learn the full network's soft output."),
    sampling: str = typer.Option("size", help="size (FLOPs target uniform over the range, then a shape near it) or uniform (per gene)."),
    prior_mix: float = typer.Option(0.25, help="Share of random candidates drawn from the gate priors (with --gates)."),
    batch_size: int = typer.Option(64, help="Batch size."),
    lr: float = typer.Option(0.05, help="Peak learning rate (SGD, cosine)."),
    generator: str = typer.Option("lowrank", help=f"Weight generator: {' | '.join(generator_names())} (lowrank: cheap, "
                                                  "default; mlp: the official design)."),
    hidden: int = typer.Option(32, help="Hidden width of every weight generator."),
    rank: int = typer.Option(4, help="Rank of the lowrank generator."),
    per_choice_bn: bool = typer.Option(False, "--per-choice-bn", help="Keep BN statistics per gene choice (score with --recal-batches 0)."),
    train_subset: Optional[int] = typer.Option(None, help="Use only this many training images."),
    seed: int = typer.Option(0, help="Random seed."),
    device: str = typer.Option("auto", help=f"Where to train: {DEVICE_HELP}."),
    amp: bool = typer.Option(True, "--amp/--no-amp", help="bfloat16 autocast on CUDA (ignored on the CPU)."),
    output: Path = typer.Option(..., "-o", "--output", help="PruningNet checkpoint (written every epoch; re-running resumes)."),
) -> None:
    """Train a PruningNet (teacher-initialised, sandwich rule, in-place distillation); resumes from OUTPUT."""
    from nas_prune.data import load_data
    from nas_prune.pruningnet import SAMPLING_MODES, get_generator, train_pruningnet
    from nas_prune.training import resolve_device

    resolve_device(device)  # an unknown or absent device is refused before anything is loaded
    get_generator(generator)
    if epochs is not None and epochs < 1:
        raise NasPruneError(f"--epochs {epochs}: train for at least one epoch")
    if sampling not in SAMPLING_MODES:
        raise NasPruneError(f"--sampling {sampling!r}: use one of {', '.join(SAMPLING_MODES)}")
    if not 0 <= prior_mix <= 1 or n_random < 0:
        raise NasPruneError(f"--prior-mix {prior_mix} / --n-random {n_random}: need a share in [0, 1] and 0 or more candidates")
    space = ChannelSpace.load(space_file)
    gates = None
    if gates_file is not None:
        from nas_prune.gates import Gates

        gates = Gates.load(gates_file)
        gates.check_space(space)
    bundle = load_data(data, input_size=space.input_shape[-1], train_subset=train_subset, seed=seed,
                       preprocess=preprocess_for(mean, std, resize, teacher),
                       augment=augment, workers=workers, strict=strict_data)
    pnet = train_pruningnet(space, bundle, epochs=epochs, teacher=teacher, gates=gates, lr=lr, batch_size=batch_size,
                            sandwich=sandwich, n_random=n_random, inplace_distill=inplace_distill, sampling=sampling,
                            prior_mix=prior_mix, generator=generator, hidden=hidden, rank=rank,
                            per_choice_bn=per_choice_bn, checkpoint=output, seed=seed, device=device, amp=amp)
    history: list[dict[str, Any]] = getattr(pnet, "history", [])  # set by train_pruningnet
    last = history[-1] if history else {}
    typer.echo(json.dumps({"space": space.id, "epochs": len(history), "loss": last.get("loss"),
                           "output": str(output)}))


@pruningnet_app.command("eval")
def evaluate(
    pnet_file: Path = typer.Option(..., "--pnet", help="PruningNet checkpoint."),
    space_file: Optional[Path] = typer.Option(None, "--space", help="Space JSON (checked; default: the one embedded in the checkpoint)."),
    arch_value: str = typer.Option(..., "--arch", help="Architecture JSON, search result (best.json), 'full' or 'uniform:RATIO'."),
    data: str = typer.Option("digits", help="Dataset (its training split recalibrates BN, its validation split scores)."),
    recal_batches: int = typer.Option(20, help="Training batches that recalibrate BatchNorm (0: per-choice statistics)."),
    batch_size: int = typer.Option(128, help="Batch size."),
    val_batches: Optional[int] = typer.Option(None, help="Score only this many validation batches."),
    device: str = typer.Option("auto", help=f"Where to score: {DEVICE_HELP}."),
    amp: bool = typer.Option(False, "--amp/--no-amp", help="bfloat16 autocast on CUDA (off by default: scores "
                                                           "of close candidates differ by a few thousandths)."),
    as_json: bool = typer.Option(False, "--json", help="Print the score, loss, accuracy and seconds as JSON."),
) -> None:
    """Score one architecture: generate its weights, recalibrate BN, evaluate on the validation split."""
    from nas_prune.data import load_data
    from nas_prune.pruningnet import PruningNetEvaluator
    from nas_prune.training import resolve_device

    resolve_device(device)
    pnet, space = _load(pnet_file, space_file)
    arch = parse_arch(arch_value, space)
    bundle = load_data(data, input_size=space.input_shape[-1], preprocess=pnet.preprocess)
    result = PruningNetEvaluator(pnet, bundle, recal_batches=recal_batches, batch_size=batch_size,
                                 val_batches=val_batches, device=device, amp=amp).score(arch)
    if as_json:
        typer.echo(json.dumps(result))
    else:
        typer.echo(f"score {result['score']:.4f} (validation loss {result['loss']:.4f} +- {result['loss_se']:.4f}), "
                   f"accuracy {result['accuracy']:.4f} ({result['seconds']:.2f} s)")


@pruningnet_app.command("export")
def export(
    pnet_file: Path = typer.Option(..., "--pnet", help="PruningNet checkpoint."),
    space_file: Optional[Path] = typer.Option(None, "--space", help="Space JSON (checked; default: the one embedded in the checkpoint)."),
    arch_value: str = typer.Option(..., "--arch", help="Architecture JSON, search result (best.json), 'full' or 'uniform:RATIO'."),
    data: Optional[str] = typer.Option(None, help="Recalibrate BatchNorm on this dataset first (else statistics are reset)."),
    recal_batches: int = typer.Option(20, help="Training batches that recalibrate BatchNorm."),
    device: str = typer.Option("auto", help=f"Where to recalibrate (with --data): {DEVICE_HELP}. The model is "
                                            "written from the CPU."),
    output: Path = typer.Option(..., "-o", "--output", help="Model checkpoint to write (load with load_model(space, path))."),
) -> None:
    """Write the materialized model of ARCH with the generated weights (a start for distillation)."""
    from nas_prune.export import save_model
    from nas_prune.training import resolve_device

    resolve_device(device)
    pnet, space = _load(pnet_file, space_file)
    arch = parse_arch(arch_value, space)
    stats = None
    if data is not None:
        from nas_prune.data import load_data
        from nas_prune.pruningnet import PruningNetEvaluator

        bundle = load_data(data, input_size=space.input_shape[-1], preprocess=pnet.preprocess)
        stats = PruningNetEvaluator(pnet, bundle, recal_batches=recal_batches, val_batches=0,
                                    device=device).recalibrated(arch)
    model = pnet.export(arch, stats)
    channels = space.validate(arch)
    save_model(model, output, space_id=space.id, arch=channels, source="pruningnet")
    counts = space.count(arch)
    typer.echo(json.dumps({"output": str(output), "params": counts["params"], "flops": counts["flops"]}))


def register(app: typer.Typer) -> None:
    app.add_typer(pruningnet_app, name="pruningnet")
