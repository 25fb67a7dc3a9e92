"""The search stage of ``nas-prune run``: an Optuna study (SQLite in the run directory) or NNI."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from nas_prune._io import write_json
from nas_prune.data import DataBundle
from nas_prune.pipeline._config import RunConfig
from nas_prune.space import Architecture, ChannelSpace

__all__ = ["search_stage"]


def search_stage(cfg: RunConfig, space: ChannelSpace, data: DataBundle, out: Path, table: Any,
                 budget_ms: float, gates: Any) -> dict[str, Any]:
    """Search under ``budget_ms``; writes ``arch.json``, ``search.json`` and ``trials.json`` (for the report)."""
    import optuna
    from optuna.trial import TrialState

    from nas_prune.progress import progress_bar
    from nas_prune.pruningnet import PruningNet, PruningNetEvaluator
    from nas_prune.search import (ArchitectureObjective, LatencyBudget, check_budgets_reachable, make_sampler,
                                  open_study, run_trials, search_result)
    from nas_prune.search._objective import ARCH_ATTR

    if cfg.backend == "nni":
        return _nni_stage(cfg, space, out, budget_ms)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    budgets = LatencyBudget.for_tables([table], [budget_ms], names=[table.name])
    check_budgets_reachable(space, budgets)
    sampler = make_sampler(cfg.sampler, space=space, budgets=budgets, gates=gates, seed=cfg.seed,
                           multi_objective=False, population_size=min(50, max(10, cfg.n_trials // 4)))
    evaluator = PruningNetEvaluator(PruningNet.load(out / "pnet.pt", space=space), data, seed=cfg.seed)
    objective = ArchitectureObjective(space=space, evaluator=evaluator, budgets=budgets)
    storage = f"sqlite:///{(out / 'search.db').resolve()}"
    study = open_study(storage=storage, study_name="search", directions=objective.directions, sampler=sampler,
                       settings={"space": space.id, "budget_ms": budget_ms})
    with progress_bar("search", total=cfg.n_trials) as advance:
        run_trials(study, objective, cfg.n_trials, on_progress=advance)
    result = search_result(study, space, budgets, storage=storage)
    write_json(out / "search.json", result)
    best = result["best"]
    Architecture.from_json(best["architecture"]).save(out / "arch.json")
    trials = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        lat = t.user_attrs.get(f"latency_ms:{table.name}")
        if lat is None or t.user_attrs.get(ARCH_ATTR) is None:
            continue
        trials.append({"number": t.number, "latency_ms": lat, "accuracy": t.user_attrs.get("accuracy", t.values[0]),
                       "feasible": all(v <= 0 for v in t.constraints.values()), "flops": t.user_attrs.get("flops"),
                       "params": t.user_attrs.get("params"), "channels": t.user_attrs[ARCH_ATTR]})
    write_json(out / "trials.json", trials)
    return {"trials": result["n_complete"], "feasible": result["n_feasible"], "pnet_accuracy": best["accuracy"],
            "predicted_ms": best["latency_ms"][table.name], "storage": "search.db"}


def _nni_stage(cfg: RunConfig, space: ChannelSpace, out: Path, budget_ms: float) -> dict[str, Any]:
    raise NotImplementedError
