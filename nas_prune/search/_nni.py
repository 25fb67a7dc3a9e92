"""Launch, watch, stop and resume an NNI 3.0 experiment of the channel search (local training service).

NNI's Python API (``nni.experiment.Experiment``) starts the NNI manager and its web UI; every trial
runs :mod:`nas_prune.search.nni_trial`. NNI 3.0 binds the web UI port on every network interface and
has no option to restrict it: the CLI prints a warning with the mitigations.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from nas_prune.errors import NasPruneError

if TYPE_CHECKING:
    from nas_prune.search._budget import LatencyBudget
    from nas_prune.space import ChannelSpace

__all__ = ["NNI_PORT_WARNING", "check_port", "launch_nni_experiment", "resume_nni_experiment", "stop_experiment", "collect_results"]

_FINISHED = ("SUCCEEDED", "FAILED", "USER_CANCELED", "SYS_CANCELED", "EARLY_STOPPED")
RUN_FILE = "nas-prune-run.json"

# Printed (``.format(port=...)``) whenever nas-prune starts an NNI experiment.
NNI_PORT_WARNING = (
    "warning: NNI 3.0 binds its web UI port {port} on every network interface and has no option to bind "
    "127.0.0.1 only: anyone who can reach this host on port {port} can see and control the experiment. "
    "Firewall the port (e.g. 'ufw deny {port}'), run on a host without exposed interfaces, or reach the UI "
    "through an SSH tunnel ('ssh -L {port}:127.0.0.1:{port} host')."
)


def check_port(port: int) -> None:
    """Refuse a web UI port outside 1-65535 (before NNI is started).

    Raises:
        NasPruneError: the port is not a TCP port number.
    """
    if not 1 <= int(port) <= 65535:
        raise NasPruneError(f"--port {port} is not a TCP port: use 1024-65535 (8080 by default)")


def _nni() -> Any:
    try:
        import nni.experiment
    except ImportError as exc:
        raise NasPruneError(
            f"NNI is not importable ({exc}): pip install 'nas-prune[nni]' (nni==3.0 needs setuptools<81)"
        ) from None
    return nni.experiment


def launch_nni_experiment(
    *,
    space_file: str | Path,
    pnet: str | Path,
    tables: Sequence[str | Path],
    budgets: Sequence[str | float],
    output: str | Path,
    gates: str | Path | None = None,
    data: str = "digits",
    trials: int = 20,
    concurrency: int = 1,
    port: int = 8080,
    tuner: str = "TPE",
    recal_batches: int = 20,
    val_batches: int | None = None,
    batch_size: int = 128,
    detach: bool = False,
    keep: bool = False,
    experiment_id: str | None = None,
    echo: Callable[[str], None] = print,
    poll_seconds: float = 2.0,
    on_start: Callable[[], None] | None = None,
    calibration: str = "auto",
) -> dict[str, Any] | None:
    """Start an NNI experiment whose trials score candidates under the latency budgets.

    The run directory ``<output>.nni/`` holds the trial config, the search space and NNI's
    experiment directory. Without ``detach`` this waits for the experiment, writes ``output``
    (best feasible architecture, like ``nas-prune search``) and stops it; Ctrl-C stops it too and
    ``resume_nni_experiment(id)`` continues it. With ``detach`` it returns once the web UI is up.
    With ``keep`` the stopped experiment's web UI is started again in NNI's read-only view mode on
    the same port, and left running (``stop_experiment(port=port)`` closes it).

    The tables are calibrated on this machine first (``calibration``, see
    :func:`nas_prune.latency.calibrated_table`) and the trials read the calibrated copies in the
    run directory, so every trial predicts the milliseconds ``nas-prune search`` would.

    Every argument and file is checked before NNI starts; ``on_start`` is called just before
    (the CLI prints its port warning there, so a refused command prints no warning).

    Raises:
        NasPruneError: a bad argument or file, an unreachable budget, or NNI failing to start.

    Returns:
        The result written to ``output``, or ``None`` when detached.
    """
    from nas_prune.search._budget import LatencyBudget, check_budget_texts
    from nas_prune.search._load import load_tables
    from nas_prune.search._study import check_budgets_reachable
    from nas_prune.space import ChannelSpace

    if trials < 1 or concurrency < 1:
        raise NasPruneError("--trials and --concurrency must be at least 1")
    check_port(port)
    check_budget_texts(list(budgets))
    exp_api = _nni()
    space = ChannelSpace.load(space_file)
    loaded = load_tables(tables, space, calibration=calibration, log=echo)
    lb = LatencyBudget.for_tables(loaded, list(budgets), reference=space.full())
    check_budgets_reachable(space, lb)
    search_space = _search_space(space, gates)
    if not Path(pnet).is_file():
        raise NasPruneError(f"PruningNet {pnet} does not exist: train one with 'nas-prune pruningnet train'")
    output = Path(output).resolve()
    run_dir = output.with_name(output.name + ".nni")
    cfg_path = _write_run_dir(run_dir, output=output, space_file=space_file, pnet=pnet, tables=loaded, budgets=lb,
                              search_space=search_space, data=data, prior=gates is not None,
                              recal_batches=recal_batches, val_batches=val_batches, batch_size=batch_size)
    config = _experiment_config(exp_api, space_id=space.id, run_dir=run_dir, cfg_path=cfg_path,
                                search_space=search_space, tuner=tuner, trials=trials, concurrency=concurrency)
    experiment = exp_api.Experiment(config, id=experiment_id)
    return _run(experiment, port=port, detach=detach, keep=keep, output=output, echo=echo, poll_seconds=poll_seconds,
                start=lambda mode: experiment.start(port, run_mode=mode), on_start=on_start)


def _search_space(space: ChannelSpace, gates: str | Path | None) -> dict[str, Any]:
    """NNI's search space of ``space``, shaped by the prior of ``gates`` when given."""
    from nas_prune.search._load import load_gates

    if gates is not None:
        return load_gates(gates, space).nni_search_space(space)
    return space.nni_search_space()


def _write_run_dir(run_dir: Path, *, output: Path, space_file: str | Path, pnet: str | Path, tables: Sequence[Any],
                   budgets: Sequence[LatencyBudget], search_space: dict[str, Any], data: str, prior: bool,
                   recal_batches: int, val_batches: int | None, batch_size: int) -> Path:
    """Write the run directory: the calibrated tables, the trial config, the search space and the run file.

    Args:
        run_dir: The run directory (``<output>.nni``), created if missing.
        output: Where the result will be written (recorded in the run file for a resume).
        space_file: The channel space's file.
        pnet: The PruningNet checkpoint the trials score with.
        tables: The calibrated latency tables, saved into ``run_dir`` for the trials.
        budgets: One latency budget per table.
        search_space: NNI's search space.
        data: The trials' data set.
        prior: Whether the search space follows the gates' prior.
        recal_batches: Batches recalibrating batch norm in each trial.
        val_batches: Validation batches per trial (``None``: all).
        batch_size: The trials' batch size.

    Returns:
        The trial config's path.
    """
    from nas_prune._io import write_json
    from nas_prune.search.nni_trial import write_trial_config

    run_dir.mkdir(parents=True, exist_ok=True)
    saved = [t.save(run_dir / f"table{i}_calibrated.json") for i, t in enumerate(tables)]
    cfg_path = write_trial_config(run_dir / "trial_config.json", space=space_file, pnet=pnet, tables=saved,
                                  budgets_ms=[b.budget_ms for b in budgets], names=[b.name for b in budgets], data=data,
                                  prior=prior, recal_batches=recal_batches, val_batches=val_batches,
                                  batch_size=batch_size)
    write_json(run_dir / "search_space.json", search_space)
    write_json(run_dir / RUN_FILE, {"output": str(output), "space": str(Path(space_file).resolve())})
    return cfg_path


def _experiment_config(exp_api: Any, *, space_id: str, run_dir: Path, cfg_path: Path, search_space: dict[str, Any],
                       tuner: str, trials: int, concurrency: int) -> Any:
    """NNI's local experiment config: every trial runs :mod:`nas_prune.search.nni_trial` on ``cfg_path``."""
    config = exp_api.ExperimentConfig("local")
    config.experiment_name = f"nas-prune {space_id}"
    config.trial_command = f"{shlex.quote(sys.executable)} -m nas_prune.search.nni_trial --config {shlex.quote(str(cfg_path))}"
    config.trial_code_directory = str(run_dir)
    config.search_space = search_space
    config.tuner.name = tuner
    config.tuner.class_args = {"optimize_mode": "maximize"}
    config.max_trial_number = trials
    config.trial_concurrency = concurrency
    config.experiment_working_directory = str(run_dir / "experiments")
    return config


def resume_nni_experiment(
    experiment_id: str,
    *,
    port: int = 8080,
    output: str | Path | None = None,
    detach: bool = False,
    keep: bool = False,
    echo: Callable[[str], None] = print,
    poll_seconds: float = 2.0,
    on_start: Callable[[], None] | None = None,
) -> dict[str, Any] | None:
    """Resume a stopped experiment (its finished trials are kept) and wait for it like a launch."""
    check_port(port)
    exp_api = _nni()
    experiment = exp_api.Experiment(None, id=experiment_id)
    if not experiment.has_checkpoint():
        raise NasPruneError(f"NNI experiment {experiment_id} is unknown here: check the ID ('nnictl experiment list --all')")
    experiment.load_checkpoint()
    run_dir = Path(experiment.config.trial_code_directory)
    if output is None:
        from nas_prune._io import read_json

        output = read_json(run_dir / RUN_FILE, what="nas-prune NNI run file")["output"]

    def start(mode: Any) -> None:
        experiment._action = "resume"
        experiment.start(port, run_mode=mode)

    return _run(experiment, port=port, detach=detach, keep=keep, output=Path(output), echo=echo,
                poll_seconds=poll_seconds, start=start, on_start=on_start)


def _run(experiment: Any, *, port: int, detach: bool, output: Path, echo: Callable[[str], None],
         poll_seconds: float, start: Callable[[Any], None], keep: bool = False,
         on_start: Callable[[], None] | None = None) -> dict[str, Any] | None:
    from nni.experiment import RunMode

    from nas_prune._io import write_json
    from nas_prune.progress import progress_bar

    if on_start is not None:
        on_start()
    try:
        start(RunMode.Detach if detach else RunMode.Background)
    except Exception as exc:  # port taken, node missing, ...
        raise NasPruneError(f"NNI could not start the experiment on port {port} ({exc}): pick another --port") from None
    echo(f"NNI experiment {experiment.id}: web UI http://127.0.0.1:{port}  (stop: nas-prune nni --stop --port {port}; "
         f"resume: nas-prune nni --resume {experiment.id})")
    if detach:
        return None
    total = int(experiment.config.max_trial_number or 0)
    try:
        with progress_bar("nni trials", total=total or None) as advance:
            seen = 0
            while True:
                status = experiment.get_status()
                done = sum(s["trialJobNumber"] for s in experiment.get_job_statistics()
                           if s["trialJobStatus"] in _FINISHED)
                if done > seen:
                    advance(done - seen)
                    seen = done
                if status in ("DONE", "STOPPED", "ERROR") or (total and done >= total):
                    break
                time.sleep(poll_seconds)
        if status == "ERROR":
            raise NasPruneError(f"NNI experiment {experiment.id} failed: see {experiment.config.experiment_working_directory}/{experiment.id}/log")
        result = collect_results(experiment)
        write_json(output, result)
        best = result["best"]
        echo(f"best: trial {best['trial']}, accuracy {best['accuracy']:.4f}, "
             + ", ".join(f"{k} {v:.4g} ms" for k, v in best["latency_ms"].items())
             + f" ({result['n_feasible']}/{result['n_complete']} feasible) -> {output}")
        return result
    except KeyboardInterrupt:
        keep = False
        echo(f"interrupted: stopping; continue with nas-prune nni --resume {experiment.id}")
        raise
    finally:
        experiment.stop()
        if keep:
            _view(experiment.id, port, echo)


def _view(experiment_id: str, port: int, echo: Callable[[str], None]) -> None:
    """Start the stopped experiment's web UI again in NNI's read-only view mode (in the background)."""
    exp_api = _nni()
    try:
        exp_api.Experiment(None, id=experiment_id).view(port=port, non_blocking=True)
    except Exception as exc:
        raise NasPruneError(f"NNI could not show experiment {experiment_id} on port {port} ({exc}): "
                            f"run 'nnictl view {experiment_id} --port {port}'") from None
    echo(f"NNI experiment {experiment_id} finished; its web UI stays at http://127.0.0.1:{port} (read-only view "
         f"mode; close it with Ctrl-C or nas-prune nni --stop --port {port})")


def collect_results(experiment: Any) -> dict[str, Any]:
    """Read every final result back from NNI's REST API; the best feasible trial and the counts.

    Raises:
        NoFeasibleArchitectureError: no trial met every budget.
    """
    from nas_prune.search._study import RESULT_FORMAT, NoFeasibleArchitectureError

    rows = []
    for r in experiment.export_data():
        value = r.value
        while isinstance(value, str):
            value = json.loads(value)
        if isinstance(value, dict) and "default" in value:
            rows.append((r.trialJobId, r.parameter, value))
    feasible = [row for row in rows if row[2].get("feasible") == 1]
    space_id = None
    try:
        from nas_prune.space import ChannelSpace
        from nas_prune._io import read_json

        run = read_json(Path(experiment.config.trial_code_directory) / RUN_FILE, what="nas-prune NNI run file")
        space_id = ChannelSpace.load(run["space"]).id
    except Exception:
        pass
    if not feasible:
        lat = sorted({k for _, _, v in rows for k in v if k.startswith("latency_ms:")})
        fastest = {k: min(v[k] for _, _, v in rows if k in v) for k in lat}
        raise NoFeasibleArchitectureError(
            f"none of the {len(rows)} finished NNI trials of {experiment.id} meets the budget "
            f"(fastest predicted: {', '.join(f'{k[11:]} {ms:.4g} ms' for k, ms in fastest.items()) or 'none'}): "
            "raise the budget or run more trials"
        )

    def record(row: tuple[str, Any, dict[str, Any]]) -> dict[str, Any]:
        job, _, v = row
        return {
            "trial": job,
            "architecture": {"space": space_id, "channels": json.loads(v["channels"]) if "channels" in v else None},
            "score": v.get("default"),  # what the tuner maximised: the PruningNet score (feasible trials)
            "accuracy": v.get("accuracy"),
            "latency_ms": {k[len("latency_ms:"):]: ms for k, ms in v.items() if k.startswith("latency_ms:")},
            "flops": v.get("flops"),
            "params": v.get("params"),
        }

    best = max(feasible, key=lambda row: row[2]["default"])
    return {
        "format": RESULT_FORMAT,
        "version": 1,
        "backend": "nni",
        "experiment": experiment.id,
        "space": space_id,
        "n_complete": len(rows),
        "n_feasible": len(feasible),
        "best": record(best),
        "trials": [{**record(row), "feasible": bool(row[2].get("feasible"))} for row in rows],
    }


def stop_experiment(*, port: int = 8080, experiment_id: str | None = None) -> str:
    """Stop the running experiment on ``port`` (or the one with ``experiment_id``); returns its ID."""
    exp_api = _nni()
    if experiment_id is not None:
        from nni.tools.nnictl.config_utils import Experiments

        info = Experiments().get_all_experiments().get(experiment_id)
        if not info:
            raise NasPruneError(f"NNI experiment {experiment_id} is unknown: check the ID")
        port = int(info.get("port") or port)
    try:
        experiment = exp_api.Experiment.connect(port)
    except Exception as exc:
        raise NasPruneError(f"no NNI experiment answers on port {port} ({type(exc).__name__}): check --port") from None
    experiment.stop()
    return str(experiment.id)
