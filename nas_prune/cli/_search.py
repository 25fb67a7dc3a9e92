"""``nas-prune search`` (Optuna, many workers, resumable) and ``nas-prune nni`` (an NNI experiment)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, List, Optional

import typer

from nas_prune.errors import NasPruneError
from nas_prune.search import DEFAULT_SAMPLER, NNI_PORT_WARNING, sampler_help

if TYPE_CHECKING:
    from nas_prune.search import LatencyBudget
    from nas_prune.space import ChannelSpace

__all__ = ["register"]


def search(
    space_file: Path = typer.Option(..., "--space", help="Space JSON."),
    pnet: Path = typer.Option(..., "--pnet", help="Trained PruningNet (nas-prune pruningnet train)."),
    table: List[Path] = typer.Option(..., "--table", help="Latency table; repeat for several devices."),
    budget: List[str] = typer.Option(..., "--budget", help="Latency budget with its unit (1.8ms, 1800us) or a "
                                     "fraction of the unpruned model's predicted latency (0.5x); one per --table "
                                     "or one for all."),
    output: Path = typer.Option(..., "-o", "--output", help="best.json to write."),
    backend: str = typer.Option("optuna", help="optuna (this command) or nni (same as 'nas-prune nni')."),
    sampler: str = typer.Option(DEFAULT_SAMPLER, help=sampler_help() + "."),
    gates: Optional[Path] = typer.Option(None, "--gates", help="gates.json: gate-prior sampler and seed trials."),
    data: str = typer.Option("digits", help="Data whose validation split scores candidates."),
    recal_batches: int = typer.Option(20, help="Training batches that recalibrate BatchNorm per candidate."),
    val_batches: Optional[int] = typer.Option(None, help="Validation batches per candidate (default: all)."),
    eval_batch_size: int = typer.Option(128, help="Batch size of recalibration and validation."),
    n_trials: int = typer.Option(100, "--n-trials", help="Completed trials the study should hold (all workers)."),
    storage: Optional[str] = typer.Option(None, help="Optuna storage URL (default: SQLite next to -o); "
                                                     "postgresql://... for many workers."),
    study_name: Optional[str] = typer.Option(None, help="Study name (default: search-<space id>)."),
    multi_objective: bool = typer.Option(False, "--multi-objective", help="Accuracy vs latency: Pareto front."),
    population_size: int = typer.Option(50, help="Population of evolution / NSGA-II."),
    seed: Optional[int] = typer.Option(None, help="Sampler seed (give each worker its own, or none)."),
    concurrency: int = typer.Option(1, help="--backend nni only: trials run at once."),
    port: int = typer.Option(8080, help="--backend nni only: web UI port."),
    calibration: str = typer.Option("auto", help="Latency tables: auto (check and adapt a table this machine did "
                                    "not calibrate; cached) | refresh | off (as stored)."),
    heartbeat: int = typer.Option(10, help="Seconds between trial heartbeats; a dead worker's trial is "
                                           "failed and retried after twice this.", hidden=True),
) -> None:
    """Search the most accurate architecture under latency budgets in an Optuna study.

    Start the same command on several machines with one --storage postgresql://... URL to share the
    study; re-run it to resume. Open the study with optuna-dashboard STORAGE.
    """
    from nas_prune.search import check_budget_texts

    check_budget_texts(budget)
    if backend == "nni":
        from nas_prune.search import check_port, launch_nni_experiment

        check_port(port)
        launch_nni_experiment(space_file=space_file, pnet=pnet, tables=table, budgets=budget, gates=gates,
                              data=data, trials=n_trials, concurrency=concurrency, port=port, output=output,
                              recal_batches=recal_batches, val_batches=val_batches, batch_size=eval_batch_size,
                              echo=typer.echo, calibration=calibration,
                              on_start=lambda: typer.echo(NNI_PORT_WARNING.format(port=port), err=True))
        return
    _check_optuna_settings(backend, n_trials, sampler)
    from nas_prune._io import write_json
    from nas_prune.progress import progress_bar
    from nas_prune.search import default_storage, load_evaluator, load_gates, redact, run_search
    from nas_prune.space import ChannelSpace

    sp = ChannelSpace.load(space_file)
    budgets = _budgets(sp, table, budget, calibration)
    gate_obj = load_gates(gates, sp) if gates else None
    url = storage or default_storage(output)
    name = study_name or f"search-{sp.id}"
    typer.echo(f"study {name!r} in {redact(url)}: {n_trials} trials, sampler {sampler}; "
               f"budgets {', '.join(f'{b.name} <= {b.budget_ms:g} ms' for b in budgets)}", err=True)
    with progress_bar("search", total=n_trials) as advance:
        _study, result = run_search(
            sp,
            lambda: load_evaluator(pnet, sp, data=data, recal_batches=recal_batches, val_batches=val_batches,
                                   batch_size=eval_batch_size),
            budgets, storage=url, study_name=name, n_trials=n_trials, sampler=sampler, gates=gate_obj,
            multi_objective=multi_objective, population_size=population_size, seed=seed,
            heartbeat_interval=heartbeat, on_progress=advance, log=lambda m: typer.echo(m, err=True),
        )
    write_json(output, result)
    _echo_best(result, output, multi_objective)


def _check_optuna_settings(backend: str, n_trials: int, sampler: str) -> None:
    """Refuse an unknown backend, no trials or an unknown sampler before anything is loaded."""
    if backend != "optuna":
        raise NasPruneError(f"--backend {backend!r} is not known: use optuna or nni")
    if n_trials < 1:
        raise NasPruneError("--n-trials must be at least 1")
    from nas_prune.search import check_sampler

    check_sampler(sampler)


def _budgets(sp: ChannelSpace, tables: List[Path], budgets: List[str], calibration: str) -> list[LatencyBudget]:
    """One :class:`LatencyBudget` per latency table (calibrated as ``--calibration`` says)."""
    from nas_prune.search import LatencyBudget, load_tables

    return LatencyBudget.for_tables(
        load_tables(tables, sp, calibration=calibration, log=lambda m: typer.echo(m, err=True)), budgets,
        reference=sp.full())


def _echo_best(result: dict[str, Any], output: Path, multi_objective: bool) -> None:
    """Print the best architecture found (and the Pareto front's size)."""
    best = result["best"]
    lat = ", ".join(f"{k} {v:.4g} ms" for k, v in best["latency_ms"].items())
    typer.echo(f"best: trial {best['trial']}, accuracy {best['accuracy']:.4f}, {lat}, {best['flops']} FLOPs "
               f"({result['n_feasible']}/{result['n_complete']} feasible) -> {output}")
    if multi_objective:
        typer.echo(f"Pareto front: {len(result['pareto_front'])} architectures")


_REQUIRED = "Required to start an experiment"


def nni(
    space_file: Optional[Path] = typer.Option(None, "--space", help="Space JSON. [required to start]",
                                              rich_help_panel=_REQUIRED),
    pnet: Optional[Path] = typer.Option(None, "--pnet", help="Trained PruningNet. [required to start]",
                                        rich_help_panel=_REQUIRED),
    table: List[Path] = typer.Option([], "--table", help="Latency table; repeat for several devices. "
                                     "[required to start]", rich_help_panel=_REQUIRED),
    budget: List[str] = typer.Option([], "--budget", help="Latency budget with its unit (1.8ms) or a fraction of "
                                     "the unpruned model's predicted latency (0.5x); one per --table or one for "
                                     "all. [required to start]", rich_help_panel=_REQUIRED),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="best.json (and the run directory). "
                                          "[required to start]", rich_help_panel=_REQUIRED),
    gates: Optional[Path] = typer.Option(None, "--gates", help="gates.json: qnormal priors as the search space."),
    data: str = typer.Option("digits", help="Data whose validation split scores candidates."),
    recal_batches: int = typer.Option(20, help="Training batches that recalibrate BatchNorm per candidate."),
    val_batches: Optional[int] = typer.Option(None, help="Validation batches per candidate (default: all)."),
    eval_batch_size: int = typer.Option(128, help="Batch size of recalibration and validation."),
    trials: int = typer.Option(20, help="Trials of the experiment."),
    concurrency: int = typer.Option(1, help="Trials run at once."),
    tuner: str = typer.Option("TPE", help="NNI tuner (TPE, Evolution, Random, Anneal, ...; NasPruneEvolution or "
                                          "NasPruneGatePrior once registered, see examples/nni)."),
    port: int = typer.Option(8080, help="Web UI port (bound on EVERY interface by NNI 3.0)."),
    detach: bool = typer.Option(False, "--detach", help="Start and return; the experiment runs on."),
    keep: bool = typer.Option(False, "--keep", help="After the last trial, keep the web UI up (NNI's read-only "
                                                   "view mode) until Ctrl-C."),
    stop: bool = typer.Option(False, "--stop", help="Stop the experiment on --port (or --resume ID)."),
    resume: Optional[str] = typer.Option(None, "--resume", help="Resume the stopped experiment ID."),
    calibration: str = typer.Option("auto", help="Latency tables: auto | refresh | off (see nas-prune search)."),
) -> None:
    """Run the search as an NNI experiment (local training service) with its web UI.

    Every trial reports accuracy, feasibility, predicted latency per table, FLOPs and params.
    Ctrl-C stops the experiment; '--resume ID' continues it; '--stop' stops a detached one;
    '--keep' leaves the finished experiment's web UI up.
    """
    from nas_prune.search import check_port, launch_nni_experiment, resume_nni_experiment, stop_experiment

    if stop:
        exp_id = stop_experiment(port=port, experiment_id=resume)
        typer.echo(f"stopped NNI experiment {exp_id}")
        return
    check_port(port)
    if detach and keep:
        raise NasPruneError("--keep waits for the experiment to end and --detach returns at once: choose one")
    warn = lambda: typer.echo(NNI_PORT_WARNING.format(port=port), err=True)  # noqa: E731 (printed once NNI starts)
    if resume:
        resume_nni_experiment(resume, port=port, output=output, detach=detach, keep=keep, echo=typer.echo,
                              on_start=warn)
        _wait_in_view(keep, port)
        return
    missing = [flag for flag, v in (("--space", space_file), ("--pnet", pnet), ("--table", table),
                                    ("--budget", budget), ("-o", output)) if not v]
    if missing:
        raise NasPruneError(f"nas-prune nni needs {', '.join(missing)} to start an experiment "
                            "(see nas-prune nni --help, 'Required to start an experiment')")
    assert space_file is not None and pnet is not None and output is not None  # checked just above
    launch_nni_experiment(space_file=space_file, pnet=pnet, tables=table, budgets=budget, gates=gates,
                          data=data, trials=trials, concurrency=concurrency, port=port, output=output,
                          recal_batches=recal_batches, val_batches=val_batches, batch_size=eval_batch_size, tuner=tuner,
                          detach=detach, keep=keep, echo=typer.echo, on_start=warn, calibration=calibration)
    _wait_in_view(keep, port)


def _wait_in_view(keep: bool, port: int) -> None:
    """With --keep: hold the view-mode web UI until Ctrl-C, then stop it."""
    if not keep:
        return
    import time

    from nas_prune.search import stop_experiment

    try:
        while True:
            time.sleep(5)
    except KeyboardInterrupt:
        stop_experiment(port=port)
        typer.echo("web UI closed")


def register(app: typer.Typer) -> None:
    app.command("search")(search)
    app.command("nni")(nni)
