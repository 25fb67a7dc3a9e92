"""``nas-prune run`` (the whole job) and ``nas-prune report`` (its HTML report)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from nas_prune.cli._common import AUGMENT_OPTION, RESIZE_OPTION, STRICT_DATA_OPTION, WORKERS_OPTION
from nas_prune.distill import init_names, method_help
from nas_prune.distributed import is_main
from nas_prune.errors import NasPruneError
from nas_prune.pipeline import RUN_INITS
from nas_prune.search import DEFAULT_SAMPLER, sampler_help

__all__ = ["register"]

_RUN_INIT_HELP = " | ".join(dict.fromkeys([*RUN_INITS, *init_names()]))


def run(
    model: str = typer.Option("mobilenet_v2", help="Model name or package.module:factory."),
    data: str = typer.Option("digits", help="digits | fashion-mnist[:root] | cifar10:root | imagefolder:root"),
    teacher: Optional[Path] = typer.Option(None, help="Your trained weights of --model (a state_dict, a dict holding "
                                           "one under state_dict/model/..., or a nas-prune checkpoint): evaluated, "
                                           "not trained again."),
    weights: Optional[str] = typer.Option(None, help="torchvision's named weights of --model (IMAGENET1K_V1, DEFAULT), "
                                          "read from $TORCH_HOME/hub/checkpoints (never downloaded); their "
                                          "preprocessing comes with them."),
    mean: Optional[str] = typer.Option(None, help="Input mean your network was trained with: one value or one per "
                                       "channel (0.286 or 0.485,0.456,0.406); default 0.5, or the --weights' own."),
    std: Optional[str] = typer.Option(None, help="Input std, as --mean (default 0.25, or the --weights' own)."),
    resize: Optional[int] = RESIZE_OPTION,
    augment: Optional[str] = AUGMENT_OPTION,
    workers: Optional[int] = WORKERS_OPTION,
    strict_data: bool = STRICT_DATA_OPTION,
    teacher_lr: Optional[float] = typer.Option(None, help="Teacher learning rate (default 0.05 from scratch, 0.005 "
                                               "fine-tuning trained weights)."),
    budget: str = typer.Option("0.5x", help="Latency budget: a fraction of the teacher's (0.5x) or absolute (1.8ms)."),
    table: Optional[Path] = typer.Option(None, help="Latency table to use (default: shipped one, else profile)."),
    profile: bool = typer.Option(False, "--profile", help="Profile a fresh latency table on this machine."),
    backend: str = typer.Option("optuna", help="optuna | nni"),
    sampler: str = typer.Option(DEFAULT_SAMPLER, help=sampler_help()),
    out: Path = typer.Option(Path("runs/demo"), help="Run directory (every stage is cached there)."),
    input_size: int = typer.Option(32, help="Input height and width."),
    threads: int = typer.Option(1, help="onnxruntime threads (the table's)."),
    method: str = typer.Option("kd", help=f"Distillation: {method_help()}"),
    init: str = typer.Option("pnet", help=f"Student init: {_RUN_INIT_HELP} (pnet and gates: this run's own files)"),
    seed: int = typer.Option(0, help="Random seed."),
    teacher_epochs: Optional[int] = typer.Option(None, help="From scratch: override the dataset preset. With trained "
                                                 "weights: fine-tune this many epochs (default 0, or a transfer "
                                                 "fine-tune when the classifier is replaced)."),
    gate_epochs: Optional[int] = typer.Option(None, help="Override the dataset preset."),
    gate_steps: Optional[int] = typer.Option(None, help="Gate steps per ratio (when --gate-epochs is not given); "
                                             "override the dataset preset."),
    pnet_epochs: Optional[int] = typer.Option(None, help="Default: from the training split's size (1-10 epochs)."),
    n_trials: Optional[int] = typer.Option(None, help="Override the dataset preset."),
    distill_epochs: Optional[int] = typer.Option(None, help="Override the dataset preset."),
    train_subset: Optional[int] = typer.Option(None, help="Use only this many training images."),
    batch_size: Optional[int] = typer.Option(None, help="Images per batch in every training stage (default: 64 for "
                                             "digits, 128 otherwise, and 128 for the distillation); lower it "
                                             "for 224-px images on a CPU or a small GPU."),
    validate_n: int = typer.Option(8, help="Architectures whose latency is measured against the prediction."),
    device: str = typer.Option("auto", help="Where the teacher, the gates and the PruningNet train, candidates are "
                                            "scored and the distillation trains: auto (CUDA when present) | cpu | "
                                            "cuda | cuda:N. Latency is measured as the table says."),
    finalists: int = typer.Option(8, help="Most accurate candidates measured against the teacher before the pick."),
    pick_margin: float = typer.Option(0.04, help="The pick must measure at least this fraction under the budget (the "
                                      "ratio drifts by a few %% between measurements minutes apart); more where the "
                                      "run measures more drift (up to 12 %%). The final verdict is against the "
                                      "budget itself."),
    select: str = typer.Option("score", help="The pick: score (the PruningNet's best finalist) | finetune (the best "
                               "--select-k finalists and uniform width and global magnitude pruning at the same "
                               "measured budget, fine-tuned briefly: successive halving decides; a few epochs of 5k images)."),
    select_k: int = typer.Option(3, help="--select finetune: finalists that compete with the baselines."),
    calibration: str = typer.Option("auto", help="Latency table calibration: auto (check/adapt a table this "
                                    "machine did not calibrate) | refresh | off."),
    repair: bool = typer.Option(True, "--repair/--no-repair", help="When the final network measures over the budget "
                                "on a quiet machine: shrink it (shape kept), finish it briefly from its distilled "
                                "weights and check again (default), or only warn."),
    nproc: int = typer.Option(1, help="Training processes on this machine (one per GPU, or CPU processes): runs "
                              "the command under torchrun --standalone --nproc-per-node N; the training stages "
                              "use DDP, the rest runs on the first process. Several machines: start torchrun "
                              "yourself (docs/usage.md)."),
) -> None:
    """Run the whole job: space, teacher (yours with --teacher/--weights, or trained here), latency table, gates,
    PruningNet, search, distillation, report."""
    options = {k: v for k, v in locals().items() if k != "nproc"}  # every other option is the RunConfig field of its name
    from nas_prune.pipeline import RunConfig, run_pipeline

    cfg = RunConfig(**options, distill_batch_size=batch_size)
    _launch_if_several(nproc)
    summary = run_pipeline(cfg)
    if not is_main():
        return  # rank 0 prints the result
    typer.echo(json.dumps(_result(summary, out), indent=2))


def _launch_if_several(nproc: int) -> None:
    """With ``--nproc`` over 1 (and not under torchrun yet): run the command under torchrun and exit with its code.

    Called once the settings are valid (:class:`RunConfig` checked them)."""
    if nproc < 1:
        raise NasPruneError(f"--nproc {nproc}: give 1 or more processes")
    if nproc > 1 and "WORLD_SIZE" not in os.environ:  # the settings are valid: launch the processes
        raise typer.Exit(launch(nproc, "run"))


def _result(summary: dict[str, Any], out: Path) -> dict[str, Any]:
    """What ``nas-prune run`` prints: the verdict, the accuracies and latencies, where the report is."""
    t, f = summary["teacher"], summary["final"]
    return {
        "teacher_accuracy": t["accuracy"], "final_accuracy": f["accuracy"],
        "teacher_ms": t["measured_latency_ms"], "final_ms": f["measured_latency_ms"],
        "budget_ms": summary["budget_ms"], "latency_ratio": summary["latency_ratio"],
        "latency_ratio_interval": summary["latency_ratio_interval"], "limit_ratio": summary["limit_ratio"],
        "feasible": summary["feasible"], "speedup": summary["speedup"],
        "calibration": summary["calibration"]["label"],
        "report": str(out / "report.html"), "stage_seconds": summary["stage_seconds"],
    }


def launch(nproc: int, command: str) -> int:
    """Run this ``nas-prune`` command again under ``torchrun --standalone --nproc-per-node nproc``
    (without ``--nproc``); returns torchrun's exit code."""
    args, skip = [], False
    for a in sys.argv[sys.argv.index(command) + 1:]:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            args.append(a)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "nas_prune", command, *args]
    return subprocess.call(cmd)


def report(
    run_dir: Path = typer.Argument(..., help="A run directory written by 'nas-prune run'."),
    screenshot: Optional[Path] = typer.Option(None, help="Also render the page to this PNG (needs chromium)."),
) -> None:
    """Write RUN_DIR/report.html (plotly figures) from a run's summary and artefacts."""
    from nas_prune.report import screenshot as shoot
    from nas_prune.report import write_report

    path = write_report(run_dir)
    typer.echo(str(path))
    if screenshot:
        typer.echo(str(shoot(path, screenshot)))


def check(
    run_dir: Path = typer.Argument(..., help="A finished run directory written by 'nas-prune run'."),
) -> None:
    """Measure a finished run's final network against its teacher again (the run's protocol), e.g. on a
    quieter machine; updates final_check.json, summary.json (the verdict, and a 'rechecks' entry) and the report."""
    from nas_prune.pipeline import recheck_run

    summary = recheck_run(run_dir)
    last = summary["rechecks"][-1]
    typer.echo(json.dumps({"latency_ratio": summary["latency_ratio"],
                           "latency_ratio_interval": summary["latency_ratio_interval"],
                           "limit_ratio": summary["limit_ratio"], "feasible": summary["feasible"],
                           "before": last["before"], "contended": summary["latency_ratio_blocks"]["contended"]},
                          indent=2))


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("check")(check)
    app.command("report")(report)
