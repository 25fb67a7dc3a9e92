"""MetaPruning's evolutionary search as an Optuna sampler."""

from __future__ import annotations

import os
import random
import warnings
from typing import Any, Callable, Sequence

from optuna.samplers import BaseSampler, RandomSampler

from nas_prune.errors import NasPruneError
from nas_prune.gates import grid_value
from nas_prune.space import Architecture, ChannelSpace, Gene, draw_near

__all__ = ["EvolutionSampler"]

_ATTR = "nas_prune:evolution"


class EvolutionSampler(BaseSampler):
    """The evolutionary search of MetaPruning (Liu et al., ICCV 2019, arXiv 1903.10258), for Optuna.

    The first ``population_size`` candidates are random. After that, the population is the
    ``population_size`` best feasible architectures the study has completed, the parents are its
    top ``num_parents``, and each new trial is, by its slot ``trial.number % population_size``, a
    mutation of a parent (every gene resampled with probability ``mutation_prob``; slots
    ``[0, n_mutation)``), a uniform crossover of two parents (the next ``n_crossover`` slots) or a
    random architecture (the rest). A candidate that ``feasibility`` rejects (e.g. over a latency
    budget) or that the study already holds (completed, running or queued) is redrawn before it
    costs an evaluation, up to ``max_redraws`` times per operator (``max_random_draws`` for random
    candidates: under a tight budget the feasible share of uniform random architectures can be
    1 in 5000, and a draw costs ~30 microseconds).

    All state is read from the study's trials, never kept in the sampler, so several workers on one
    storage (e.g. PostgreSQL) and a resumed study continue the same evolution; it is steady-state
    rather than generational, the usual way to run an evolution asynchronously. The random stream of
    a trial is seeded by ``(seed, trial.number)``, so workers never draw the same sequence.

    Parameters that are not genes of ``space`` are sampled at random (:class:`optuna.samplers.RandomSampler`).
    For a multi-objective study, parents are ranked by how many completed trials dominate them.

    Args:
        space: The channel space whose genes (Optuna parameter names = gene names) evolve.
        population_size: Population kept, and number of random candidates that start the search.
        num_parents: Top-k of the population that mutations and crossovers draw from.
        mutation_prob: Probability that a mutation resamples each gene.
        n_mutation: Mutation slots per ``population_size`` trials.
        n_crossover: Crossover slots per ``population_size`` trials.
        feasibility: ``arch -> bool``; infeasible candidates are redrawn (e.g. a latency budget).
        max_redraws: Draws per mutation or crossover before falling back to random candidates.
        max_random_draws: Draws of random candidates before giving up on a new feasible one (the
            trial then repeats an architecture or breaks the budget, with a warning, and the
            objective does not evaluate it).
        fill: ``arch -> cost / budget`` (e.g. the largest ratio of predicted latency to budget over
            every table); with ``min_fill``, candidates are kept near the budget: random ones are
            drawn by size (:func:`nas_prune.space.draw_near`, a fill uniform in ``[min_fill,
            1]``) and every candidate under ``min_fill`` is redrawn like an infeasible one. Under a
            budget, a narrower network than needed is rarely the most accurate, and uniform
            random draws land far below the budget (a 0.7x search returned networks at 0.35-0.58x).
        min_fill: The least fill a candidate may have (0 keeps every size). Ignored when even the
            full network fills less.
        seed: Seed of the random streams.
    """

    def __init__(
        self,
        *,
        space: ChannelSpace,
        population_size: int = 50,
        num_parents: int = 10,
        mutation_prob: float = 0.1,
        n_mutation: int = 25,
        n_crossover: int = 25,
        feasibility: Callable[[Architecture], bool] | None = None,
        max_redraws: int = 1000,
        max_random_draws: int = 100_000,
        fill: Callable[[Architecture], float] | None = None,
        min_fill: float = 0.0,
        seed: int | None = None,
    ) -> None:
        if population_size < 2 or not 2 <= num_parents <= population_size:
            raise NasPruneError(
                f"population_size={population_size}, num_parents={num_parents}: need 2 <= num_parents <= population_size"
            )
        if (not 0.0 <= mutation_prob <= 1.0 or n_mutation < 0 or n_crossover < 0 or max_redraws < 1
                or max_random_draws < 1):
            raise NasPruneError("mutation_prob must lie in [0, 1]; n_mutation, n_crossover >= 0; "
                                "max_redraws, max_random_draws >= 1")
        self.space = space
        self.population_size = population_size
        self.num_parents = num_parents
        self.mutation_prob = mutation_prob
        self.n_mutation = n_mutation
        self.n_crossover = n_crossover
        self.feasibility = feasibility
        self.max_redraws = max_redraws
        self.max_random_draws = max_random_draws
        self._seed = seed if seed is not None else int.from_bytes(os.urandom(4), "little")
        self._genes: tuple[Gene, ...] = space.searchable_genes
        self._random = RandomSampler(seed=seed)
        self.fill = fill
        top = fill(space.full()) if fill is not None else 0.0
        self.min_fill = float(min_fill) if fill is not None and top >= min_fill else 0.0
        self._top_fill = min(1.0, top)

    # ------------------------------------------------------------------ Optuna's sampler interface
    def reseed_rng(self) -> None:
        self._seed = int.from_bytes(os.urandom(4), "little")
        self._random.reseed_rng()

    def infer_relative_search_space(self, study: Any, trial: Any) -> dict[str, Any]:
        return self.space.optuna_distributions()

    def sample_relative(self, study: Any, trial: Any, search_space: dict[str, Any]) -> dict[str, Any]:
        if not search_space:
            return {}
        genes = [g for g in self._genes if g.name in search_space]
        params: dict[str, Any] = {}
        fixed = trial.system_attrs.get("fixed_params") or {}
        if genes and len(genes) == len(self._genes) and not any(g.name in fixed for g in genes):
            arch, info = self._next_architecture(study, trial)
            study._storage.set_trial_system_attr(trial._trial_id, _ATTR, info)
            params = {g.name: grid_value(g, arch.channels[g.name]) for g in genes}
        for name, dist in search_space.items():
            if name not in params:
                params[name] = self._random.sample_independent(study, trial, name, dist)
        return params

    def sample_independent(self, study: Any, trial: Any, param_name: str, param_distribution: Any) -> Any:
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    # ------------------------------------------------------------------ the evolution
    def _next_architecture(self, study: Any, trial: Any) -> tuple[Architecture, dict[str, Any]]:
        rng = random.Random(f"{self._seed}:{trial.number}")
        population, seen = self._population(study, trial)
        if len(population) < self.population_size:
            op = "random"
        else:
            slot = trial.number % self.population_size
            op = "mutation" if slot < self.n_mutation else "crossover" if slot < self.n_mutation + self.n_crossover else "random"
        parents = population[: self.num_parents]
        draw = {"mutation": self._mutate, "crossover": self._crossover, "random": self._random_arch,
                "uniform": self._uniform_arch}
        # Near the budget first (random = drawn by size); when those are exhausted, any new feasible one.
        names = [op, "random", "uniform"] if self.min_fill else [op, "uniform"]
        candidate: Architecture | None = None
        for name in dict.fromkeys(names):
            tries = self.max_random_draws if name == "uniform" else self.max_redraws
            for _ in range(tries):
                candidate, used = draw[name](rng, parents)
                near = name == "uniform" or self._full_enough(candidate)
                if near and _key(candidate, self._genes) not in seen and self._feasible(candidate):
                    return candidate, {"op": "random" if name == "uniform" else name, "parents": used,
                                       "channels": list(_key(candidate, self._genes))}
        warnings.warn(
            f"EvolutionSampler: no new feasible architecture in {self.max_random_draws} random draws; trial {trial.number} "
            "repeats or breaks the budget (it is not evaluated again): the space may be exhausted",
            stacklevel=2,
        )
        assert candidate is not None
        return candidate, {"op": "exhausted", "parents": [], "channels": list(_key(candidate, self._genes))}

    def _feasible(self, arch: Architecture) -> bool:
        return self.feasibility is None or bool(self.feasibility(arch))

    def _full_enough(self, arch: Architecture) -> bool:
        return not self.min_fill or self.fill(arch) >= self.min_fill  # type: ignore[misc]

    def _population(self, study: Any, trial: Any) -> tuple[list[tuple[int, Architecture]], set[tuple[int, ...]]]:
        """The best feasible completed architectures (best first) and every architecture already held."""
        from optuna.trial import TrialState

        from nas_prune.search._objective import architecture_of

        seen: set[tuple[int, ...]] = set()
        scored: list[tuple[Any, Architecture]] = []
        for t in study._get_trials(deepcopy=False, use_cache=True):
            if t.number == trial.number:
                continue
            arch = architecture_of(t, self.space)
            if arch is None:
                info = t.system_attrs.get(_ATTR)  # a running trial whose params are not stored yet
                candidate = info.get("channels") if isinstance(info, dict) else None
                if candidate:
                    seen.add(tuple(candidate))
                continue
            seen.add(_key(arch, self._genes))
            if t.state != TrialState.COMPLETE or any(v > 0 for v in t.constraints.values()):
                continue
            if t.values is None or not self._feasible(arch):
                continue
            scored.append((t, arch))
        ranked = _rank(study, [t for t, _ in scored])
        population = [(t.number, arch) for (t, arch), _ in sorted(zip(scored, ranked), key=lambda x: x[1])]
        return population[: self.population_size], seen  # type: ignore[return-value]

    def _random_arch(self, rng: random.Random, parents: Sequence[tuple[int, Architecture]]) -> tuple[Architecture, list[int]]:
        if self.min_fill:  # a size between min_fill and the budget, then a random shape of that size
            target = rng.uniform(self.min_fill, self._top_fill)
            return draw_near(self.space, self.fill, target, rng), []  # type: ignore[arg-type]
        return self._uniform_arch(rng, parents)

    def _uniform_arch(self, rng: random.Random, parents: Sequence[tuple[int, Architecture]]) -> tuple[Architecture, list[int]]:
        return self._complete({g.name: rng.choice(g.choices) for g in self._genes}), []

    def _mutate(self, rng: random.Random, parents: Sequence[tuple[int, Architecture]]) -> tuple[Architecture, list[int]]:
        number, parent = rng.choice(list(parents))
        channels = {
            g.name: rng.choice(g.choices) if rng.random() < self.mutation_prob else parent.channels[g.name]
            for g in self._genes
        }
        return self._complete(channels), [number]

    def _crossover(self, rng: random.Random, parents: Sequence[tuple[int, Architecture]]) -> tuple[Architecture, list[int]]:
        (n1, p1), (n2, p2) = rng.sample(list(parents), 2)
        channels = {g.name: (p1 if rng.random() < 0.5 else p2).channels[g.name] for g in self._genes}
        return self._complete(channels), [n1, n2]

    def _complete(self, channels: dict[str, int]) -> Architecture:
        full = {g.name: channels.get(g.name, g.choices[-1] if g.fixed is None else g.width) for g in self.space.genes}
        return Architecture(self.space.id, full)


def _key(arch: Architecture, genes: Sequence[Gene]) -> tuple[int, ...]:
    return tuple(int(arch.channels[g.name]) for g in genes)


def _rank(study: Any, trials: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Sort keys, smaller is better: by value, or by dominating-trial count when multi-objective."""
    from optuna.study import StudyDirection

    signs = [-1.0 if d == StudyDirection.MAXIMIZE else 1.0 for d in study.directions]
    losses = [[s * v for s, v in zip(signs, t.values)] for t in trials]
    if len(signs) == 1:
        return [(loss[0], t.number) for loss, t in zip(losses, trials)]

    def dominates(a: list[float], b: list[float]) -> bool:
        return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))

    return [(sum(dominates(o, loss) for o in losses), loss[0], t.number) for loss, t in zip(losses, trials)]
