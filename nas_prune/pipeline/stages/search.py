"""Stage ``search``: an Optuna study (SQLite in the run directory) or an NNI experiment, under the budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nas_prune._io import write_json
from nas_prune.pipeline._context import RunContext, Stage
from nas_prune.progress import console, progress_bar
from nas_prune.space import Architecture

__all__ = ["STAGE"]


def run(ctx: RunContext) -> dict[str, Any]:
    """Search under the budget; writes ``arch.json``, ``search.json`` and ``trials.json`` (for the report).

    The table is the run's calibrated one (``table_calibrated.json``): the budget and the predictions
    share its clock, the same as ``nas-prune search`` with that table on this machine.
    """
    table = ctx.table.rescaled(ctx.table.reference_ms, name="cpu")
    if ctx.cfg.backend == "nni":
        return _nni_search(ctx, table)
    return _optuna_search(ctx, table)


def _optuna_search(ctx: RunContext, table: Any) -> dict[str, Any]:
    from optuna.trial import TrialState

    from nas_prune.budget import LatencyLimit
    from nas_prune.pruningnet import TARGET_SE, PruningNet, PruningNetEvaluator
    from nas_prune.search import ARCH_ATTR, LatencyBudget, run_search

    cfg, space, data, out = ctx.cfg, ctx.space, ctx.data, ctx.out
    budgets = LatencyBudget.for_tables([table], [LatencyLimit(ctx.budget_ms, relative=False)], names=[table.name])
    storage = f"sqlite:///{(out / 'search.db').resolve()}"

    def evaluator() -> PruningNetEvaluator:
        ev = PruningNetEvaluator(PruningNet.load(out / "pnet.pt", space=space), data, seed=cfg.seed, device=ctx.device)
        ctx.log(f"search: candidates scored on {ev.val_images:,} validation images" + (
            f" (a top-1 standard error of {TARGET_SE:.1%} at the unpruned network's {ev.pilot_accuracy:.1%})"
            if ev.pilot_accuracy is not None else ""))
        return ev

    with progress_bar("search", total=ctx.n_trials) as advance:
        study, result = run_search(
            space, evaluator,
            budgets, storage=storage, study_name="search", n_trials=ctx.n_trials, sampler=cfg.sampler, gates=ctx.gates,
            population_size=min(50, max(10, ctx.n_trials // 4)), seed=cfg.seed, on_progress=advance,
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


def _nni_search(ctx: RunContext, table: Any) -> dict[str, Any]:
    """NNI trials predict with the calibrated table as stored: budgets and results are converted to and from its clock."""
    space, out, budget_ms = ctx.space, ctx.out, ctx.budget_ms
    from nas_prune.search import NNI_PORT_WARNING, launch_nni_experiment

    to_table = table.table.reference_ms / table.reference_ms  # 1.0: the run predicts on the calibration's clock
    result = launch_nni_experiment(
        space_file=out / "space.json", pnet=out / "pnet.pt", tables=[out / "table_calibrated.json"],
        budgets=[budget_ms * to_table], output=out / "nni" / "best.json", data=ctx.cfg.data, trials=ctx.n_trials,
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


STAGE = Stage("search", "an Optuna study or NNI experiment under the budget", run, needs=("budget", "pruningnet"),
              outputs=("arch.json", "trials.json"),
              reads="training split (BatchNorm recalibration per candidate), validation split (score)")
