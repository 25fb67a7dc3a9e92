"""What optuna-dashboard and ``optuna.visualization`` read: constraint lists and metric names.

Optuna 5's ``trial.set_constraint(name, value)`` stores each constraint under its own system
attribute ``constraints:<name>``. optuna-dashboard (0.21.0) still reads only the older format, one
system attribute ``constraints`` holding the list of values, and without it shows every trial as
feasible. nas-prune writes both: :func:`record_dashboard_constraints` adds the list, in budget
order. Optuna reads both formats and merges them, so a nas-prune trial's ``trial.constraints`` holds
each budget twice, under its name and under its position (``"0"``, ``"1"``, ...), with the same
value; feasibility (every value <= 0) and NSGA-II's and TPE's constraint handling are unchanged.

``optuna.visualization.plot_optimization_history`` draws its best-value line from feasible trials
only (it reads ``trial.constraints``) and shows infeasible trials in grey; ``plot_pareto_front``
draws its front from feasible trials only, and ``study.best_trial`` / ``study.best_trials`` skip
infeasible ones. Infeasible trials keep their value (0.0: not evaluated) and are told apart by
their constraints, never by the value.
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

__all__ = [
    "DASHBOARD_CONSTRAINTS_KEY",
    "OBJECTIVE_METRIC",
    "constraint_values",
    "metric_names",
    "name_metrics",
    "record_dashboard_constraints",
]

#: The trial system attribute optuna-dashboard reads the constraint values from (a list of floats).
DASHBOARD_CONSTRAINTS_KEY = "constraints"
#: Name of the objective nas-prune maximises (the evaluator's result key, in dashboards and plots).
OBJECTIVE_METRIC = "score"
_PREFIX = DASHBOARD_CONSTRAINTS_KEY + ":"


def record_dashboard_constraints(trial: Any, values: Sequence[float]) -> None:
    """Store ``values`` as the trial's ``constraints`` list, where optuna-dashboard reads them.

    Does nothing for trials without storage (``optuna.trial.FixedTrial``, stand-ins).
    """
    storage = getattr(trial, "storage", None)
    trial_id = getattr(trial, "_trial_id", None)
    if storage is None or trial_id is None or not hasattr(storage, "set_trial_system_attr"):
        return
    listed = [float(v) for v in values]
    storage.set_trial_system_attr(trial_id, DASHBOARD_CONSTRAINTS_KEY, listed)
    cached = getattr(trial, "_cached_frozen_trial", None)
    if cached is not None:  # keep the trial's own view in step, as Trial.set_constraint does
        cached.system_attrs[DASHBOARD_CONSTRAINTS_KEY] = listed


def constraint_values(trial: Any) -> list[float]:
    """The trial's named constraint values (``constraints:<name>``; else the list) in stored order.

    For tools that take a ``constraints_func(frozen_trial) -> list[float]`` (Optuna's samplers,
    other plotting code): the values without the dashboard's positional duplicates.
    """
    attrs = trial.system_attrs
    named = [float(v) for k, v in attrs.items() if k.startswith(_PREFIX)]
    if named:
        return named
    return [float(v) for v in attrs.get(DASHBOARD_CONSTRAINTS_KEY) or []]


def metric_names(*, multi_objective: bool, budget_names: Sequence[str] = ()) -> list[str]:
    """Names of the values an :class:`~nas_prune.search.ArchitectureObjective` returns."""
    if not multi_objective:
        return [OBJECTIVE_METRIC]
    return [OBJECTIVE_METRIC, f"latency_ms:{budget_names[0]}" if budget_names else "mflops"]


def name_metrics(study: Any, names: Sequence[str]) -> None:
    """``study.set_metric_names(names)`` unless the study already has names (a shared study)."""
    if getattr(study, "metric_names", None) is not None or not hasattr(study, "set_metric_names"):
        return
    with warnings.catch_warnings():  # experimental since Optuna 3.2
        warnings.simplefilter("ignore")
        study.set_metric_names(list(names))
