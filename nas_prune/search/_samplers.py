"""Samplers by name, in a registry: TPE, NSGA-II, MetaPruning's evolution, the gate prior, random.

A new sampler is one factory decorated with :func:`register_sampler` (in its own module, imported
by ``nas_prune/search/__init__.py``, or in your own code); :func:`make_sampler`, ``run_search``,
the NNI tuners and the command line's ``--sampler`` then know it by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from nas_prune.errors import NasPruneError
from nas_prune.search._budget import LatencyBudget
from nas_prune.search._evolution import EvolutionSampler
from nas_prune.space import Architecture, ChannelSpace, scaled

__all__ = ["MIN_FILL", "SAMPLERS", "SamplerEntry", "SamplerFactory", "SamplerRequest", "budget_fill", "check_sampler",
           "enqueue_feasible_random", "enqueue_widest_uniform", "feasible_under", "make_sampler", "register_sampler",
           "sampler_help", "sampler_names", "widest_uniform"]

N_STARTUP_TRIALS = 10  # random (or gate-prior, or enqueued feasible) trials before TPE models the results
#: Least share of the budget the evolution's and random search's candidates use: a budgeted
#: search should pick a network near its budget unless a narrower one scores better.
MIN_FILL = 0.9


def budget_fill(budgets: Sequence[LatencyBudget]) -> Callable[[Architecture], float] | None:
    """``arch -> max over budgets of predicted / budget`` (1.0 = exactly at the tightest budget)."""
    if not budgets:
        return None
    budgets = tuple(budgets)
    return lambda arch: max(b.predict(arch) / b.budget_ms for b in budgets)


def widest_uniform(space: ChannelSpace, budgets: Sequence[LatencyBudget], *, steps: int = 100) -> Architecture | None:
    """The widest uniform-width architecture (every gene at the same ratio) under every budget."""
    feasible = feasible_under(budgets)
    best = None
    for i in range(1, steps + 1):
        arch = scaled(space, i / steps)  # searchable genes at the ratio, the others at full width
        if feasible is None or feasible(arch):
            best = arch
    return best


def enqueue_widest_uniform(study: Any, space: ChannelSpace, budgets: Sequence[LatencyBudget]) -> Architecture | None:
    """Enqueue :func:`widest_uniform` (call it on a new study), so that it is always evaluated.

    Scaling every layer by one factor is what a user gets in one line; the search's pick is then
    never below it by the evaluator's own score.
    """
    from nas_prune.gates import grid_value

    arch = widest_uniform(space, budgets)
    if arch is None:
        return None
    study.enqueue_trial({g.name: grid_value(g, arch.channels[g.name]) for g in space.searchable_genes},
                        user_attrs={"seed": "widest uniform width"}, skip_if_exists=True)
    return arch


def feasible_under(budgets: Sequence[LatencyBudget]) -> Callable[[Architecture], bool] | None:
    """``arch -> bool``: whether ``arch`` meets every budget (``None`` when there is none)."""
    if not budgets:
        return None
    budgets = tuple(budgets)
    return lambda arch: all(b.feasible(arch) for b in budgets)


@dataclass(frozen=True)
class SamplerRequest:
    """What a sampler factory is given: the search's space, budgets and settings.

    Attributes:
        space: The channel space.
        budgets: Latency budgets (empty: unconstrained).
        gates: A loaded ``nas_prune.gates.Gates`` or ``None``.
        seed: Random seed.
        multi_objective: Whether the study has two objectives.
        n_startup_trials: Random (or prior) trials before a model-based sampler models the results.
        population_size: Population of population-based samplers.
    """

    space: ChannelSpace
    budgets: tuple[LatencyBudget, ...] = ()
    gates: Any = None
    seed: int | None = None
    multi_objective: bool = False
    n_startup_trials: int = N_STARTUP_TRIALS
    population_size: int = 50


#: A sampler factory: ``SamplerRequest -> optuna.samplers.BaseSampler``.
SamplerFactory = Callable[[SamplerRequest], Any]


@dataclass(frozen=True)
class SamplerEntry:
    """One registered sampler: its name, factory and a one-line summary (the CLI's help)."""

    name: str
    build: SamplerFactory
    summary: str = ""


_REGISTRY: dict[str, SamplerEntry] = {}


def register_sampler(name: str, *, summary: str = "") -> Callable[[SamplerFactory], SamplerFactory]:
    """Decorator: register ``build`` as the sampler ``name`` (``make_sampler(name)``, ``--sampler name``).

    Example::

        @register_sampler("qmc", summary="quasi-Monte Carlo (Sobol)")
        def qmc(req: SamplerRequest) -> optuna.samplers.BaseSampler:
            return optuna.samplers.QMCSampler(seed=req.seed)

    Raises:
        ValueError: another factory is already registered under ``name``.
    """
    def decorate(build: SamplerFactory) -> SamplerFactory:
        if name in _REGISTRY and _REGISTRY[name].build is not build:
            raise ValueError(f"sampler {name!r} is already registered")
        _REGISTRY[name] = SamplerEntry(name, build, summary)
        return build

    return decorate


def sampler_names() -> tuple[str, ...]:
    """Every registered sampler, in registration order (the built-in ones first)."""
    return tuple(_REGISTRY)


def sampler_help() -> str:
    """``name (summary) | ...`` for every registered sampler: the command line's ``--sampler`` help."""
    return " | ".join(f"{e.name} ({e.summary})" if e.summary else e.name for e in _REGISTRY.values())


def check_sampler(name: str) -> None:
    """Raise a one-line :class:`NasPruneError` unless ``name`` is a registered sampler."""
    if name not in _REGISTRY:
        raise NasPruneError(f"unknown sampler {name!r}: choose one of {', '.join(_REGISTRY)}")


def make_sampler(
    name: str,
    *,
    space: ChannelSpace,
    budgets: Sequence[LatencyBudget] = (),
    gates: Any = None,
    seed: int | None = None,
    multi_objective: bool = False,
    n_startup_trials: int = N_STARTUP_TRIALS,
    population_size: int = 50,
) -> Any:
    """Build the registered sampler ``name`` for a channel search (:func:`sampler_names` lists them).

    Built in: ``tpe`` (multivariate TPE with the constant liar, so parallel workers spread out),
    ``nsga2`` (NSGA-II, constrained domination), ``evolution``
    (:class:`~nas_prune.search.EvolutionSampler`; infeasible candidates, and candidates using less
    than :data:`MIN_FILL` of the budget, redrawn before they are evaluated), ``gate-prior``
    (``nas_prune.gates.GatePriorSampler``: startup trials drawn from the gate priors, then TPE, or
    NSGA-II when ``multi_objective``), ``random`` (uniform over each gene's choices; with budgets,
    random shapes drawn by size between :data:`MIN_FILL` of the budget and the budget, and
    infeasible draws rejected before they cost an evaluation: MetaPruning's random-search
    baseline, aimed at the budget). More with :func:`register_sampler`.

    Args:
        name: A registered sampler.
        space: The channel space.
        budgets: Latency budgets (the evolution sampler rejects candidates over them).
        gates: A loaded ``nas_prune.gates.Gates`` (required by ``gate-prior``).
        seed: Random seed.
        multi_objective: Whether the study has two objectives.
        n_startup_trials: Random (or gate-prior) trials before TPE models the results.
        population_size: Population of NSGA-II and of the evolution.

    Raises:
        NasPruneError: an unknown name, or a sampler missing what it needs (``gate-prior`` without gates).
    """
    check_sampler(name)
    return _REGISTRY[name].build(SamplerRequest(space=space, budgets=tuple(budgets), gates=gates, seed=seed,
                                                multi_objective=multi_objective, n_startup_trials=n_startup_trials,
                                                population_size=population_size))


def _tpe(seed: int | None, n_startup_trials: int) -> Any:
    import optuna

    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup_trials, multivariate=True,
                                      constant_liar=True)


def _nsga2(req: SamplerRequest) -> Any:
    import optuna

    return optuna.samplers.NSGAIISampler(seed=req.seed, population_size=req.population_size)


# The built-in samplers, in the order the command line lists them.
@register_sampler("tpe", summary="multivariate TPE, constant liar")
def _tpe_sampler(req: SamplerRequest) -> Any:
    return _tpe(req.seed, req.n_startup_trials)


@register_sampler("nsga2", summary="NSGA-II, constrained domination")
def _nsga2_sampler(req: SamplerRequest) -> Any:
    return _nsga2(req)


@register_sampler("evolution", summary="MetaPruning's evolution, infeasible candidates redrawn")
def _evolution_sampler(req: SamplerRequest) -> Any:
    n = req.population_size
    return EvolutionSampler(space=req.space, feasibility=feasible_under(req.budgets), seed=req.seed,
                            population_size=n, num_parents=max(2, n // 5), n_mutation=n // 2, n_crossover=n // 2,
                            fill=budget_fill(req.budgets), min_fill=MIN_FILL)


@register_sampler("gate-prior", summary="needs --gates: startup trials from the gate priors, then TPE")
def _gate_prior_sampler(req: SamplerRequest) -> Any:
    if req.gates is None:
        raise NasPruneError("--sampler gate-prior needs --gates gates.json (learn them with 'nas-prune gates')")
    from nas_prune.gates import GatePriorSampler

    base = _nsga2(req) if req.multi_objective else _tpe(req.seed, req.n_startup_trials)
    return GatePriorSampler(gates=req.gates, space=req.space, base_sampler=base, n_startup_trials=req.n_startup_trials,
                            seed=req.seed)


@register_sampler("random", summary="uniform; under a budget, drawn near it and infeasible draws rejected")
def _random_sampler(req: SamplerRequest) -> Any:
    if not req.budgets:
        import optuna

        return optuna.samplers.RandomSampler(seed=req.seed)
    # Rejection sampling: the evolution sampler with every slot random (and no duplicates).
    return EvolutionSampler(space=req.space, feasibility=feasible_under(req.budgets), seed=req.seed,
                            population_size=req.population_size, num_parents=2, n_mutation=0, n_crossover=0,
                            fill=budget_fill(req.budgets), min_fill=MIN_FILL)


#: The built-in samplers (:func:`sampler_names` also lists samplers registered later).
SAMPLERS = sampler_names()


def enqueue_feasible_random(study: Any, space: ChannelSpace, budgets: Sequence[LatencyBudget], n: int, *,
                            seed: int | None = None, max_draws: int = 100_000) -> int:
    """Enqueue ``n`` random architectures that meet every budget as the first trials of a new study.

    TPE and NSGA-II start from random trials; under a tight budget nearly all of them would be
    infeasible (not evaluated, so they teach the model nothing about accuracy). Drawing the
    startup architectures uniformly among the feasible ones, by rejection, gives the model
    ``n`` scored points. Only a new study is seeded. Returns how many were enqueued.
    """
    import random

    from nas_prune.gates import grid_value

    feasible = feasible_under(budgets)
    if feasible is None or n < 1 or study.get_trials(deepcopy=False):
        return 0
    rng = random.Random(seed)
    genes = space.searchable_genes
    full = space.full().channels
    seen: set[tuple[int, ...]] = set()
    last = 0  # draw of the last new feasible architecture
    for draw in range(1, max_draws + 1):
        if len(seen) >= n or draw - last > max(10_000, 20 * last / max(1, len(seen))):
            break  # enough, or the feasible architectures are (nearly) exhausted
        channels = {**full, **{g.name: rng.choice(g.choices) for g in genes}}
        key = tuple(channels[g.name] for g in genes)
        if key in seen or not feasible(Architecture(space.id, channels)):
            continue
        seen.add(key)
        last = draw
        study.enqueue_trial({g.name: grid_value(g, c) for g, c in zip(genes, key)}, skip_if_exists=True)
    return len(seen)
