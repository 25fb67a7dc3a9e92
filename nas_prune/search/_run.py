"""One call that runs (or joins, or resumes) a latency-constrained Optuna search."""

from __future__ import annotations

import warnings
from typing import Any, Callable, Sequence

from nas_prune.search._budget import LatencyBudget
from nas_prune.search._objective import ArchitectureObjective, CandidateEvaluator
from nas_prune.search._samplers import N_STARTUP_TRIALS, enqueue_feasible_random, enqueue_widest_uniform, make_sampler
from nas_prune.search._study import check_budgets_reachable, open_study, run_trials, search_result
from nas_prune.space import ChannelSpace

__all__ = ["DEFAULT_SAMPLER", "run_search"]

#: The sampler of ``nas-prune search``, ``nas-prune run`` and :func:`run_search` when none is named:
#: MetaPruning's evolution, which redraws over-budget and repeated candidates before they cost an
#: evaluation (single and multi-objective).
DEFAULT_SAMPLER = "evolution"


def run_search(
    space: ChannelSpace,
    evaluator: CandidateEvaluator | Callable[[], CandidateEvaluator],
    budgets: Sequence[LatencyBudget],
    *,
    storage: str,
    study_name: str,
    n_trials: int,
    sampler: str = DEFAULT_SAMPLER,
    gates: Any = None,
    multi_objective: bool = False,
    population_size: int = 50,
    seed: int | None = None,
    heartbeat_interval: int | None = 10,
    settings: dict[str, Any] | None = None,
    on_progress: Callable[[int], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Search ``space`` until the study holds ``n_trials`` completed trials, over every worker.

    Several processes calling this with one RDB ``storage`` and ``study_name`` share the study; a
    second call after an interrupt resumes it. ``evaluator`` may be a factory, called only after the
    study opened (a wrong storage URL fails before a PruningNet is loaded).

    Returns:
        ``(study, result)`` where ``result`` is :func:`search_result`'s ``best.json`` content.

    Raises:
        NoFeasibleArchitectureError: no completed trial meets every budget.
    """
    import optuna

    from nas_prune.search._load import enqueue_gate_candidates

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    check_budgets_reachable(space, budgets)
    smp = make_sampler(sampler, space=space, budgets=budgets, gates=gates, seed=seed,
                       multi_objective=multi_objective, population_size=population_size)
    objective = ArchitectureObjective(space=space, evaluator=None, budgets=budgets,  # type: ignore[arg-type]
                                      multi_objective=multi_objective)
    base = {"space": space.id, "budgets": {b.name: b.budget_ms for b in budgets}, "multi_objective": multi_objective}
    study = open_study(storage=storage, study_name=study_name, directions=objective.directions, sampler=smp,
                       settings={**base, **(settings or {})}, heartbeat_interval=heartbeat_interval)
    fresh = not study.get_trials(deepcopy=False)
    if gates is not None:
        enqueue_gate_candidates(study, gates, space, budgets)
    elif sampler in ("tpe", "nsga2"):  # start the model from scored (feasible) random architectures
        enqueue_feasible_random(study, space, budgets, N_STARTUP_TRIALS if sampler == "tpe" else population_size,
                                seed=seed)
    if fresh:  # the pick is then never below uniform width by the evaluator's own score
        enqueue_widest_uniform(study, space, budgets)
    objective.evaluator = evaluator() if callable(evaluator) and not hasattr(evaluator, "score") else evaluator
    run_trials(study, objective, n_trials, on_progress=on_progress, log=log)
    return study, search_result(study, space, budgets, storage=storage)
