"""MetaPruning's evolution as an Optuna sampler: feasibility, no duplicates, operators, resume."""

from __future__ import annotations

import itertools
import random

import optuna
import pytest
from optuna.testing.pytest_samplers import (
    BasicSamplerTestCase,
    MultiObjectiveSamplerTestCase,
    RelativeSamplerTestCase,
)

from nas_prune.errors import NasPruneError
from nas_prune.search import ArchitectureObjective, EvolutionSampler, LatencyBudget, feasible_under
from nas_prune.space import Architecture
from tests.search.standins import FakeEvaluator, FakeTable

optuna.logging.set_verbosity(optuna.logging.WARNING)


class TestOptunaBasicCases(BasicSamplerTestCase):
    @pytest.fixture
    def sampler(self, tiny_space):
        space = tiny_space
        return lambda: EvolutionSampler(space=space, population_size=4, num_parents=2, seed=0)


class TestOptunaRelativeCases(RelativeSamplerTestCase):
    @pytest.fixture
    def sampler(self, tiny_space):
        space = tiny_space
        return lambda: EvolutionSampler(space=space, population_size=4, num_parents=2, seed=0)


class TestOptunaMultiObjectiveCases(MultiObjectiveSamplerTestCase):
    @pytest.fixture
    def sampler(self, tiny_space):
        space = tiny_space
        return lambda: EvolutionSampler(space=space, population_size=4, num_parents=2, seed=0)


def _feasible_keys(space, budgets):
    ok = feasible_under(budgets)
    genes = space.searchable_genes
    keys = set()
    for combo in itertools.product(*(g.choices for g in genes)):
        arch = Architecture(space.id, dict(zip((g.name for g in genes), combo)))
        if ok(arch):
            keys.add(combo)
    return keys


def _run(space, sampler, budgets, n, storage=None, study_name=None, evaluator=None):
    ev = evaluator or FakeEvaluator(space)
    objective = ArchitectureObjective(space=space, evaluator=ev, budgets=budgets)
    study = optuna.create_study(direction="maximize", sampler=sampler, storage=storage, study_name=study_name,
                                load_if_exists=True)
    study.optimize(objective, n_trials=n)
    return study, ev


def test_only_feasible_and_new_candidates_are_evaluated(tiny_space):
    budgets = LatencyBudget.for_tables([FakeTable(tiny_space)], ["0.6ms"])
    feasible = _feasible_keys(tiny_space, budgets)
    n = len(feasible)  # every feasible architecture exactly once, then the space is exhausted
    sampler = EvolutionSampler(space=tiny_space, population_size=4, num_parents=2, n_mutation=2, n_crossover=2,
                               feasibility=feasible_under(budgets), seed=0)
    study, ev = _run(tiny_space, sampler, budgets, n)
    keys = [tuple(c[g.name] for g in tiny_space.searchable_genes) for c in ev.calls]
    assert len(keys) == n and len(set(keys)) == n and set(keys) == feasible
    ops = [t.system_attrs["nas_prune:evolution"]["op"] for t in study.trials]
    assert ops[:4] == ["random"] * 4 and {"mutation", "crossover"} & set(ops[4:])
    assert all(t.user_attrs["feasible"] for t in study.trials)


def test_exhausted_space_warns_and_is_not_reevaluated(tiny_space):
    budgets = LatencyBudget.for_tables([FakeTable(tiny_space)], ["0.45ms"])
    n = len(_feasible_keys(tiny_space, budgets))
    sampler = EvolutionSampler(space=tiny_space, population_size=2, num_parents=2, feasibility=feasible_under(budgets),
                               max_redraws=50, seed=0)
    with pytest.warns(UserWarning, match="no new feasible architecture"):
        study, ev = _run(tiny_space, sampler, budgets, n + 2)
    assert len(ev.calls) == n  # the two extra trials repeat an architecture: cached, not evaluated


def test_mutation_and_crossover_operators(tiny_space):
    sampler = EvolutionSampler(space=tiny_space, population_size=4, num_parents=2, mutation_prob=0.5, seed=0)
    genes = [g.name for g in tiny_space.searchable_genes]
    p1 = Architecture(tiny_space.id, {"stem.0": 8, "block.0": 8, "head.0": 8})
    p2 = Architecture(tiny_space.id, {"stem.0": 16, "block.0": 32, "head.0": 24})
    rng = random.Random(0)
    children = [sampler._crossover(rng, [(0, p1), (1, p2)]) for _ in range(200)]
    for child, used in children:
        assert sorted(used) == [0, 1]
        assert all(child.channels[g] in (p1.channels[g], p2.channels[g]) for g in genes)
    mixed = {tuple(child.channels[g] for g in genes) for child, _ in children}
    assert len(mixed) == 8  # uniform crossover: each of 3 genes from either parent
    changed = [0] * len(genes)
    for _ in range(400):
        child, used = sampler._mutate(rng, [(0, p1)])
        assert used == [0]
        for i, g in enumerate(genes):
            changed[i] += child.channels[g] != p1.channels[g]
    # a gene changes with p = mutation_prob * (1 - 1/len(choices))
    for i, g in enumerate(tiny_space.searchable_genes):
        expect = 400 * 0.5 * (1 - 1 / len(g.choices))
        assert abs(changed[i] - expect) < 0.25 * expect + 10


def test_parents_are_the_top_k_feasible(tiny_space):
    budgets = LatencyBudget.for_tables([FakeTable(tiny_space)], ["0.6ms"])
    sampler = EvolutionSampler(space=tiny_space, population_size=4, num_parents=2, n_mutation=4, n_crossover=0,
                               feasibility=feasible_under(budgets), seed=3)
    study, _ = _run(tiny_space, sampler, budgets, 8)
    for t in study.trials[4:]:
        info = t.system_attrs["nas_prune:evolution"]
        if info["op"] != "mutation":
            continue
        earlier = [s for s in study.trials if s.number < t.number and s.state.is_finished()]
        top2 = sorted(earlier, key=lambda s: -s.value)[:2]
        assert info["parents"][0] in {s.number for s in top2}


@pytest.mark.slow
def test_resume_from_storage_continues_the_evolution(tiny_space, tmp_path):
    budgets = LatencyBudget.for_tables([FakeTable(tiny_space)], ["0.6ms"])
    url = f"sqlite:///{tmp_path}/s.db"
    n = len(_feasible_keys(tiny_space, budgets))

    def sampler():
        return EvolutionSampler(space=tiny_space, population_size=4, num_parents=2, n_mutation=2, n_crossover=2,
                                feasibility=feasible_under(budgets), seed=0)

    _, ev1 = _run(tiny_space, sampler(), budgets, 5, storage=url, study_name="evo")
    study, ev2 = _run(tiny_space, sampler(), budgets, 4, storage=url, study_name="evo")
    keys = [tuple(sorted(c.items())) for c in ev1.calls + ev2.calls]
    assert n >= 9 and len(study.trials) == 9 and len(set(keys)) == 9  # nothing re-evaluated after the restart
    ops = [t.system_attrs["nas_prune:evolution"]["op"] for t in study.trials[5:]]
    assert set(ops) - {"random"}  # the resumed sampler evolves the stored population


def test_enqueued_trials_are_respected(tiny_space):
    sampler = EvolutionSampler(space=tiny_space, population_size=2, num_parents=2, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.enqueue_trial({"stem.0": 8, "block.0": 16, "head.0": 8})
    study.optimize(ArchitectureObjective(space=tiny_space, evaluator=FakeEvaluator(tiny_space)), n_trials=1)
    assert study.trials[0].user_attrs["architecture"] == {"stem.0": 8, "block.0": 16, "head.0": 8}


def test_bad_settings_are_one_line_errors(tiny_space):
    with pytest.raises(NasPruneError, match="num_parents"):
        EvolutionSampler(space=tiny_space, population_size=4, num_parents=5)
    with pytest.raises(NasPruneError, match="mutation_prob"):
        EvolutionSampler(space=tiny_space, mutation_prob=2.0)
