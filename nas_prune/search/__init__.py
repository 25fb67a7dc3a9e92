"""Search inside Optuna studies and NNI experiments, under hard latency budgets, with many workers.

The Optuna way in::

    from nas_prune.search import ArchitectureObjective, LatencyBudget, make_sampler

    budgets = LatencyBudget.for_tables([table], ["1.8ms"])
    objective = ArchitectureObjective(space=space, evaluator=evaluator, budgets=budgets)
    study = optuna.create_study(directions=objective.directions,
                                sampler=make_sampler("evolution", space=space, budgets=budgets))
    study.optimize(objective, n_trials=200)
    study.best_trial.user_attrs["architecture"]     # the highest score; feasible by construction (trial constraints)
    pick_trial(study, budgets).trial                  # nas-prune's pick: the fastest within the best score's noise

The NNI way in: :mod:`nas_prune.search.nni_trial` is the trial entry point and
:func:`launch_nni_experiment` starts an experiment (``nas-prune nni`` on the command line).

Extension point: a sampler is a factory ``SamplerRequest -> optuna sampler`` registered with
:func:`register_sampler`; :func:`make_sampler`, :func:`run_search` and ``--sampler`` then take its
name, and the command line's help lists it (:func:`sampler_help`).
"""

from __future__ import annotations

from nas_prune.search._baselines import (
    BASELINES,
    MagnitudePruner,
    baseline_names,
    get_baseline,
    read_back,
    register_baseline,
    uniform_under,
)
from nas_prune.search._budget import (
    LatencyBudget,
    LatencyPredictor,
    check_budget_texts,
    min_latency_architecture,
    parse_milliseconds,
    parse_relative,
)
from nas_prune.search._dashboard import constraint_values, metric_names
from nas_prune.search._evolution import EvolutionSampler
from nas_prune.search._halving import HALVING_STEPS, Halving, successive_halving
from nas_prune.search._load import load_evaluator, load_gates, load_tables
from nas_prune.search._nni import NNI_PORT_WARNING, check_port, launch_nni_experiment, resume_nni_experiment, stop_experiment
from nas_prune.search._objective import (
    ARCH_ATTR,
    ArchitectureObjective,
    CandidateEvaluator,
    add_latency_constraints,
    architecture_of,
    suggest_architecture,
)
from nas_prune.search._pick import PICK_ATTR, PICK_RULE, Pick, pick_trial, record_pick, recorded_pick
from nas_prune.search._run import DEFAULT_SAMPLER, run_search
from nas_prune.search._samplers import (
    SAMPLERS,
    SamplerRequest,
    check_sampler,
    feasible_under,
    make_sampler,
    register_sampler,
    sampler_help,
    sampler_names,
)
from nas_prune.search._study import (
    RESULT_FORMAT,
    NoFeasibleArchitectureError,
    check_budgets_reachable,
    default_storage,
    normalize_storage_url,
    open_study,
    redact,
    run_trials,
    search_result,
)

__all__ = [
    "ARCH_ATTR",
    "BASELINES",
    "HALVING_STEPS",
    "Halving",
    "successive_halving",
    "MagnitudePruner",
    "baseline_names",
    "get_baseline",
    "read_back",
    "register_baseline",
    "uniform_under",
    "ArchitectureObjective",
    "DEFAULT_SAMPLER",
    "CandidateEvaluator",
    "EvolutionSampler",
    "LatencyBudget",
    "LatencyPredictor",
    "NNI_PORT_WARNING",
    "NoFeasibleArchitectureError",
    "PICK_ATTR",
    "PICK_RULE",
    "Pick",
    "RESULT_FORMAT",
    "SAMPLERS",
    "SamplerRequest",
    "add_latency_constraints",
    "architecture_of",
    "check_budget_texts",
    "check_budgets_reachable",
    "check_port",
    "check_sampler",
    "constraint_values",
    "default_storage",
    "feasible_under",
    "launch_nni_experiment",
    "load_evaluator",
    "load_gates",
    "load_tables",
    "make_sampler",
    "metric_names",
    "min_latency_architecture",
    "normalize_storage_url",
    "open_study",
    "parse_milliseconds",
    "parse_relative",
    "redact",
    "resume_nni_experiment",
    "run_search",
    "register_sampler",
    "run_trials",
    "sampler_help",
    "sampler_names",
    "pick_trial",
    "record_pick",
    "recorded_pick",
    "search_result",
    "stop_experiment",
    "suggest_architecture",
]
