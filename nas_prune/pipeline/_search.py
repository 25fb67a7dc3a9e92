"""The search stage of ``nas-prune run``: an Optuna study (SQLite in the run directory) or an NNI experiment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nas_prune._io import write_json
from nas_prune.data import DataBundle
from nas_prune.pipeline._config import RunConfig
from nas_prune.progress import console, progress_bar
from nas_prune.space import Architecture, ChannelSpace

__all__ = ["search_stage"]


def search_stage(cfg: RunConfig, space: ChannelSpace, data: DataBundle, out: Path, table: Any,
                 budget_ms: float, gates: Any) -> dict[str, Any]:
    """Search under ``budget_ms``; writes ``arch.json``, ``search.json`` and ``trials.json`` (for the report).

    ``table`` is the run's calibrated table (``table_calibrated.json``): the budget and the
    predictions share its clock, the same as ``nas-prune search`` with that table on this machine.
    """
    if cfg.backend == "nni":
        return _nni_search(cfg, space, out, table, budget_ms)
    from optuna.trial import TrialState

    from nas_prune.pruningnet import PruningNet, PruningNetEvaluator
    from nas_prune.search import ARCH_ATTR, LatencyBudget, run_search

    budgets = LatencyBudget.for_tables([table], [budget_ms], names=[table.name])
    storage = f"sqlite:///{(out / 'search.db').resolve()}"
    with progress_bar("search", total=cfg.n_trials) as advance:
        study, result = run_search(
            space, lambda: PruningNetEvaluator(PruningNet.load(out / "pnet.pt", space=space), data, seed=cfg.seed,
                                               device=cfg.device),
            budgets, storage=storage, study_name="search", n_trials=cfg.n_trials, sampler=cfg.sampler, gates=gates,
            population_size=min(50, max(10, cfg.n_trials // 4)), seed=cfg.seed, on_progress=advance,
        )
    trials = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        lat = t.user_attrs.get(f"latency_ms:{table.name}")
        if lat is None or t.user_attrs.get(ARCH_ATTR) is None or t.user_attrs.get("cached_from") is not None:
            continue
        feasible = all(v <= 0 for v in t.constraints.values())
        evaluated = feasible or bool(t.user_attrs.get("evaluated"))  # over budget: not evaluated, no accuracy
        trials.append({"number": t.number, "latency_ms": lat,
                       "accuracy": t.user_attrs.get("accuracy", t.values[0]) if evaluated else None,
                       "score": t.values[0] if evaluated else None,  # the PruningNet score the search ranked by
                       "feasible": feasible, "flops": t.user_attrs.get("flops"),
                       "params": t.user_attrs.get("params"), "channels": t.user_attrs[ARCH_ATTR]})
    return _finish(out, result, trials, result["best"]["latency_ms"][table.name], backend="optuna")


def _nni_search(cfg: RunConfig, space: ChannelSpace, out: Path, table: Any, budget_ms: float) -> dict[str, Any]:
    """NNI trials predict with the calibrated table as stored: budgets and results are converted to and from its clock."""
    from nas_prune.search import NNI_PORT_WARNING, launch_nni_experiment

    to_table = table.table.reference_ms / table.reference_ms  # 1.0: the run predicts on the calibration's clock
    result = launch_nni_experiment(
        space_file=out / "space.json", pnet=out / "pnet.pt", tables=[out / "table_calibrated.json"],
        budgets=[budget_ms * to_table], output=out / "nni" / "best.json", data=cfg.data, trials=cfg.n_trials,
        concurrency=1, echo=console.print,
        on_start=lambda: console.print(NNI_PORT_WARNING.format(port=8080), style="yellow", markup=False))
    assert result is not None  # not detached
    (name, _), = result["best"]["latency_ms"].items()
    trials = [{"number": i, "latency_ms": t["latency_ms"][name] / to_table, "accuracy": t.get("accuracy"),
               "feasible": t["feasible"], "flops": t["flops"], "params": t["params"],
               "channels": t["architecture"]["channels"]}
              for i, t in enumerate(result["trials"]) if t["architecture"]["channels"]]
    result["best"]["architecture"]["space"] = space.id
    return _finish(out, result, trials, result["best"]["latency_ms"][name] / to_table, backend="nni")


def _finish(out: Path, result: dict[str, Any], trials: list[dict[str, Any]], predicted_ms: float,
            *, backend: str) -> dict[str, Any]:
    write_json(out / "search.json", result)
    write_json(out / "trials.json", trials)
    Architecture.from_json(result["best"]["architecture"]).save(out / "arch.json")
    return {"backend": backend, "trials": result["n_complete"], "feasible": result["n_feasible"],
            "pnet_accuracy": result["best"]["accuracy"], "predicted_ms": predicted_ms}
