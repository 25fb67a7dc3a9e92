"""Samplers by name: TPE, NSGA-II, MetaPruning's evolution, the gate prior, random."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from nas_prune.errors import NasPruneError
from nas_prune.search._budget import LatencyBudget
from nas_prune.search._evolution import EvolutionSampler
from nas_prune.space import Architecture, ChannelSpace

__all__ = ["SAMPLERS", "feasible_under", "make_sampler"]

SAMPLERS = ("tpe", "nsga2", "evolution", "gate-prior", "random")


def feasible_under(budgets: Sequence[LatencyBudget]) -> Callable[[Architecture], bool] | None:
    """``arch -> bool``: whether ``arch`` meets every budget (``None`` when there is none)."""
    if not budgets:
        return None
    budgets = tuple(budgets)
    return lambda arch: all(b.feasible(arch) for b in budgets)


def make_sampler(
    name: str,
    *,
    space: ChannelSpace,
    budgets: Sequence[LatencyBudget] = (),
    gates: Any = None,
    seed: int | None = None,
    multi_objective: bool = False,
    n_startup_trials: int = 10,
    population_size: int = 50,
) -> Any:
    """Build a sampler for a channel search.

    Args:
        name: ``tpe`` (multivariate TPE with the constant liar, so parallel workers spread out),
            ``nsga2`` (NSGA-II, constrained domination), ``evolution``
            (:class:`~nas_prune.search.EvolutionSampler`; infeasible candidates redrawn before they
            are evaluated), ``gate-prior`` (``nas_prune.gates.GatePriorSampler``: startup trials
            drawn from the gate priors, then TPE, or NSGA-II when ``multi_objective``), ``random``.
        space: The channel space.
        budgets: Latency budgets (the evolution sampler rejects candidates over them).
        gates: A loaded ``nas_prune.gates.Gates`` (required by ``gate-prior``).
        seed: Random seed.
        multi_objective: Whether the study has two objectives.
        n_startup_trials: Random (or gate-prior) trials before TPE models the results.
        population_size: Population of NSGA-II and of the evolution.
    """
    import optuna

    if name == "tpe":
        return _tpe(seed, n_startup_trials)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=population_size)
    if name == "evolution":
        return EvolutionSampler(space=space, feasibility=feasible_under(budgets), seed=seed,
                                population_size=population_size, num_parents=max(2, population_size // 5),
                                n_mutation=population_size // 2, n_crossover=population_size // 2)
    if name == "gate-prior":
        if gates is None:
            raise NasPruneError("--sampler gate-prior needs --gates gates.json (learn them with 'nas-prune gates')")
        from nas_prune.gates import GatePriorSampler

        base = (optuna.samplers.NSGAIISampler(seed=seed, population_size=population_size) if multi_objective
                else _tpe(seed, n_startup_trials))
        return GatePriorSampler(gates=gates, space=space, base_sampler=base, n_startup_trials=n_startup_trials, seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise NasPruneError(f"unknown sampler {name!r}: choose one of {', '.join(SAMPLERS)}")


def _tpe(seed: int | None, n_startup_trials: int) -> Any:
    import optuna

    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup_trials, multivariate=True,
                                      constant_liar=True)
