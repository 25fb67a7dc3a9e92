"""The Optuna API: suggestions, hard latency constraints, Pareto fronts, the evaluation cache."""

from __future__ import annotations

import itertools

import optuna
import pytest

from nas_prune.search import (
    ArchitectureObjective,
    EvolutionSampler,
    LatencyBudget,
    feasible_under,
    make_sampler,
    parse_milliseconds,
    search_result,
    NoFeasibleArchitectureError,
)
from nas_prune.errors import NasPruneError
from nas_prune.space import Architecture
from tests.search.standins import FakeEvaluator, FakeTable

optuna.logging.set_verbosity(optuna.logging.WARNING)


def all_archs(space):
    genes = space.searchable_genes
    for combo in itertools.product(*(g.choices for g in genes)):
        yield Architecture(space.id, dict(zip((g.name for g in genes), combo)))


def test_parse_milliseconds():
    assert parse_milliseconds("1.8ms") == 1.8
    assert parse_milliseconds("1800us") == pytest.approx(1.8)
    assert parse_milliseconds("0.0018s") == pytest.approx(1.8)
    assert parse_milliseconds(2) == 2.0 and parse_milliseconds(0.5) == 0.5  # Python numbers are milliseconds
    for bad in ("fast", "-1ms", "0ms", "nan"):
        with pytest.raises(NasPruneError):
            parse_milliseconds(bad)
    with pytest.raises(NasPruneError, match="has no unit: write 2ms"):  # a string needs its unit
        parse_milliseconds("2")
    with pytest.raises(NasPruneError, match="relative.*nas-prune run --budget 0.5x"):
        parse_milliseconds("0.5x")


def test_budgets_pair_with_tables(tiny_space):
    t1, t2 = FakeTable(tiny_space, name="phone"), FakeTable(tiny_space, name="phone")
    b = LatencyBudget.for_tables([t1, t2], ["1ms", "2ms"])
    assert [x.name for x in b] == ["phone", "phone#2"] and [x.budget_ms for x in b] == [1.0, 2.0]
    assert [x.budget_ms for x in LatencyBudget.for_tables([t1, t2], ["3ms"])] == [3.0, 3.0]
    with pytest.raises(NasPruneError, match="one --budget per --table"):
        LatencyBudget.for_tables([t1, t2], ["1ms", "2ms", "3ms"])


def test_suggest_uses_gene_names_and_steps(tiny_space):
    study = optuna.create_study()
    trial = study.ask()
    objective = ArchitectureObjective(space=tiny_space, evaluator=FakeEvaluator(tiny_space))
    objective(trial)
    dists = trial.distributions
    assert set(dists) == {g.name for g in tiny_space.searchable_genes}
    for g in tiny_space.searchable_genes:
        assert dists[g.name] == optuna.distributions.IntDistribution(g.low, g.high, step=g.step)
    attrs = trial.user_attrs
    arch = Architecture(tiny_space.id, attrs["architecture"])
    assert tiny_space.count(arch) == {"params": attrs["params"], "flops": attrs["flops"]}


def test_constraints_make_best_trial_feasible(tiny_space):
    table = FakeTable(tiny_space)
    budgets = LatencyBudget.for_tables([table], ["0.5ms"])
    # Evaluate infeasible candidates too: the most accurate trials are then over budget.
    objective = ArchitectureObjective(space=tiny_space, evaluator=FakeEvaluator(tiny_space), budgets=budgets,
                                      evaluate_infeasible=True)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=40)
    top = max(study.trials, key=lambda t: t.value)
    assert top.user_attrs["latency_ms:fake-cpu"] > 0.5 and top.constraints["fake-cpu"] > 0
    best = study.best_trial
    assert best.user_attrs["feasible"] and best.user_attrs["latency_ms:fake-cpu"] <= 0.5
    # By name (set_constraint) and by position (the list optuna-dashboard reads), the same value.
    expected = pytest.approx(best.user_attrs["latency_ms:fake-cpu"] - 0.5)
    assert best.constraints == {"fake-cpu": expected, "0": expected}
    feasible = [t for t in study.trials if t.user_attrs["feasible"]]
    assert best.value == max(t.value for t in feasible)
    result = search_result(study, tiny_space, budgets)
    assert result["best"]["trial"] == best.number
    assert result["best"]["latency_ms"]["fake-cpu"] <= 0.5


def test_infeasible_candidates_are_not_evaluated(tiny_space):
    budgets = LatencyBudget.for_tables([FakeTable(tiny_space)], ["0.5ms"])
    ev = FakeEvaluator(tiny_space)
    objective = ArchitectureObjective(space=tiny_space, evaluator=ev, budgets=budgets)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=1))
    study.optimize(objective, n_trials=30)
    for t in study.trials:
        if not t.user_attrs["feasible"]:
            assert t.value == 0.0 and t.user_attrs["evaluated"] is False
    assert all(sum(c.values()) <= 40 for c in ev.calls)  # 0.1 + 0.01 * sum <= 0.5


def test_duplicates_are_never_evaluated_twice(tiny_space):
    ev = FakeEvaluator(tiny_space)
    objective = ArchitectureObjective(space=tiny_space, evaluator=ev)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=60)  # 24 architectures: many repeats
    keys = [tuple(sorted(c.items())) for c in ev.calls]
    assert len(keys) == len(set(keys)) and len(keys) < 60
    cached = [t for t in study.trials if "cached_from" in t.user_attrs]
    assert cached
    for t in cached:
        src = study.trials[t.user_attrs["cached_from"]]
        assert src.user_attrs["architecture"] == t.user_attrs["architecture"] and src.value == t.value


def test_multi_objective_pareto_front(tiny_space):
    budgets = LatencyBudget.for_tables([FakeTable(tiny_space)], ["0.6ms"])
    objective = ArchitectureObjective(space=tiny_space, evaluator=FakeEvaluator(tiny_space), budgets=budgets,
                                      multi_objective=True)
    study = optuna.create_study(directions=objective.directions,
                                sampler=make_sampler("nsga2", space=tiny_space, budgets=budgets, seed=0,
                                                     multi_objective=True, population_size=8))
    study.optimize(objective, n_trials=40)
    front = study.best_trials
    assert front
    feasible = [t for t in study.trials if t.user_attrs["feasible"]]
    pts = {(t.values[0], t.values[1]) for t in feasible}
    expected = {p for p in pts if not any(q[0] >= p[0] and q[1] <= p[1] and q != p for q in pts)}
    assert {(t.values[0], t.values[1]) for t in front} == expected
    assert all(t.user_attrs["latency_ms:fake-cpu"] <= 0.6 for t in front)
    result = search_result(study, tiny_space, budgets)
    assert len(result["pareto_front"]) == len(front)
    assert result["best"]["accuracy"] == max(p[0] for p in expected)


def test_no_feasible_trial_names_budget_and_fastest(tiny_space):
    budgets = LatencyBudget.for_tables([FakeTable(tiny_space)], ["0.2ms"])
    objective = ArchitectureObjective(space=tiny_space, evaluator=FakeEvaluator(tiny_space), budgets=budgets)
    study = optuna.create_study(direction="maximize")
    study.optimize(objective, n_trials=3)
    with pytest.raises(NoFeasibleArchitectureError, match=r"budget 0.2 ms on fake-cpu .*predicted at 0.34 ms"):
        search_result(study, tiny_space, budgets)


@pytest.mark.parametrize("name", ["tpe", "nsga2", "evolution", "random"])
def test_every_sampler_finds_a_feasible_architecture(tiny_space, name):
    budgets = LatencyBudget.for_tables([FakeTable(tiny_space)], ["0.5ms"])
    objective = ArchitectureObjective(space=tiny_space, evaluator=FakeEvaluator(tiny_space), budgets=budgets)
    sampler = make_sampler(name, space=tiny_space, budgets=budgets, seed=0, population_size=6, n_startup_trials=4)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=12)
    assert study.best_trial.user_attrs["latency_ms:fake-cpu"] <= 0.5


def test_random_sampler_under_a_budget_evaluates_only_new_feasible_architectures(tiny_space):
    budgets = LatencyBudget.for_tables([FakeTable(tiny_space)], ["0.5ms"])
    names = [g.name for g in tiny_space.searchable_genes]
    feasible = {tuple(a.channels[n] for n in names) for a in all_archs(tiny_space) if budgets[0].feasible(a)}
    assert 1 < len(feasible) < 24
    ev = FakeEvaluator(tiny_space)
    objective = ArchitectureObjective(space=tiny_space, evaluator=ev, budgets=budgets)
    study = optuna.create_study(direction="maximize",
                                sampler=make_sampler("random", space=tiny_space, budgets=budgets, seed=0))
    study.optimize(objective, n_trials=len(feasible))
    assert all(t.user_attrs["feasible"] and t.user_attrs["evaluated"] for t in study.trials)
    evaluated = [tuple(c[n] for n in names) for c in ev.calls]
    assert sorted(evaluated) == sorted(feasible)  # every feasible architecture once, nothing else


def test_tpe_search_starts_from_feasible_random_architectures(tiny_space, tmp_path):
    from nas_prune.search import run_search

    budgets = LatencyBudget.for_tables([FakeTable(tiny_space)], ["0.5ms"])
    n_feasible = sum(budgets[0].feasible(a) for a in all_archs(tiny_space))
    study, result = run_search(tiny_space, FakeEvaluator(tiny_space), budgets, storage=f"sqlite:///{tmp_path}/s.db",
                               study_name="s", n_trials=n_feasible + 2, sampler="tpe", seed=0, heartbeat_interval=None)
    seeded = [t for t in study.trials if "fixed_params" in t.system_attrs]
    uniform = [t for t in seeded if t.user_attrs.get("seed") == "widest uniform width"]
    assert len(uniform) <= 1  # the widest uniform width comes last (unless it was drawn already)
    assert len(seeded) - len(uniform) == min(10, n_feasible)  # distinct feasible architectures, up to TPE's 10
    assert all(t.user_attrs["feasible"] and t.user_attrs["evaluated"] for t in seeded)
    assert [t.number for t in seeded] == list(range(len(seeded)))  # they come first
    # A resumed study is not seeded again.
    study, _ = run_search(tiny_space, FakeEvaluator(tiny_space), budgets, storage=f"sqlite:///{tmp_path}/s.db",
                          study_name="s", n_trials=n_feasible + 4, sampler="tpe", seed=0, heartbeat_interval=None)
    assert len([t for t in study.trials if "fixed_params" in t.system_attrs]) == len(seeded)


@pytest.mark.slow
def test_study_opens_in_optuna_dashboard(tiny_space, tmp_path):
    dashboard = pytest.importorskip("optuna_dashboard")
    import io
    import json

    from nas_prune.search import open_study

    budgets = LatencyBudget.for_tables([FakeTable(tiny_space)], ["0.5ms"])
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = open_study(storage=url, study_name="dash", directions=["maximize"], sampler=None,
                       settings={"space": tiny_space.id}, heartbeat_interval=None)
    study.optimize(ArchitectureObjective(space=tiny_space, evaluator=FakeEvaluator(tiny_space), budgets=budgets),
                   n_trials=3)
    app = dashboard.wsgi(url)

    def get(path, qs=""):
        env = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": qs, "SERVER_NAME": "t",
               "SERVER_PORT": "80", "wsgi.input": io.BytesIO(), "wsgi.url_scheme": "http", "wsgi.errors": io.StringIO()}
        status = []
        body = b"".join(app(env, lambda s, h, *a: status.append(s)))
        assert status[0].startswith("200"), body[:300]
        return json.loads(body)

    sid = get("/api/studies")["study_summaries"][0]["study_id"]
    detail = get(f"/api/studies/{sid}", "after=0")
    assert len(detail["trials"]) == 3
    keys = {a["key"] for a in detail["trials"][0]["user_attrs"]}
    assert {"architecture", "accuracy", "flops", "params", "latency_ms:fake-cpu", "feasible"} <= keys
    assert set(detail["trials"][0]["params"][0]) >= {"name", "param_internal_value"}


def test_open_study_refuses_other_settings_and_directions(tiny_space, tmp_path):
    from nas_prune.search import open_study

    url = f"sqlite:///{tmp_path / 's.db'}"
    open_study(storage=url, study_name="x", directions=["maximize"], sampler=None, settings={"budget": 1})
    with pytest.raises(NasPruneError, match="other settings"):
        open_study(storage=url, study_name="x", directions=["maximize"], sampler=None, settings={"budget": 2})
    with pytest.raises(NasPruneError, match="multi-objective"):
        open_study(storage=url, study_name="x", directions=["maximize", "minimize"], sampler=None)
    with pytest.raises(NasPruneError, match="cannot open the study storage"):
        open_study(storage="postgresql+psycopg2://u@127.0.0.1:1/db", study_name="x", directions=["maximize"],
                   sampler=None)


class _FlatEvaluator:
    """Every candidate scores the same (inside the noise): the search must prefer the faster one."""

    def score(self, arch):
        return {"score": 0.9, "score_se": 0.01, "accuracy": 0.9, "seconds": 0.0}


def test_search_evaluates_the_widest_uniform_width_and_ties_go_to_the_faster(tiny_space, tmp_path):
    from nas_prune.search import run_search
    from nas_prune.search._samplers import widest_uniform

    table = FakeTable(tiny_space)
    budgets = LatencyBudget.for_tables([table], ["0.6ms"])
    study, result = run_search(tiny_space, _FlatEvaluator(), budgets, storage=f"sqlite:///{tmp_path}/s.db",
                               study_name="s", n_trials=12, sampler="evolution", seed=0, heartbeat_interval=None)
    uniform = dict(widest_uniform(tiny_space, budgets).channels)
    assert any(t.user_attrs.get("architecture") == uniform and t.user_attrs["evaluated"] for t in study.trials)
    feasible = [t for t in study.trials if t.user_attrs["feasible"]]
    fastest = min(t.user_attrs["latency_ms:fake-cpu"] for t in feasible)
    assert result["best"]["latency_ms"]["fake-cpu"] == fastest  # every score ties: the fastest wins


def test_a_better_score_beyond_the_noise_beats_a_faster_network(tiny_space):
    from types import SimpleNamespace

    from nas_prune.search._pick import fastest_within_noise

    def trial(n, score, ms):
        return SimpleNamespace(number=n, values=[score], constraints={"t": -1.0},
                               user_attrs={"architecture": {}, "pnet_score_se": 0.01, "latency_ms:t": ms})

    budgets = [SimpleNamespace(name="t")]
    best, close, far = trial(0, 0.90, 1.0), trial(1, 0.895, 0.8), trial(2, 0.85, 0.5)
    assert fastest_within_noise(best, [best, close, far], budgets) is close
    assert fastest_within_noise(best, [best, far], budgets) is best


def test_evolution_draws_near_the_budget(tiny_space):
    from nas_prune.search._samplers import MIN_FILL, budget_fill

    budgets = LatencyBudget.for_tables([FakeTable(tiny_space)], ["0.6ms"])
    fill = budget_fill(budgets)
    ev = FakeEvaluator(tiny_space)
    objective = ArchitectureObjective(space=tiny_space, evaluator=ev, budgets=budgets)
    study = optuna.create_study(direction="maximize",
                                sampler=make_sampler("evolution", space=tiny_space, budgets=budgets, seed=0,
                                                     population_size=4))
    full = tiny_space.full().channels
    near = sum(MIN_FILL <= fill(Architecture(tiny_space.id, {**full, **a.channels})) <= 1.0 for a in all_archs(tiny_space))
    assert near >= 6
    study.optimize(objective, n_trials=near)
    fills = [fill(Architecture(tiny_space.id, c)) for c in ev.calls]
    assert all(MIN_FILL <= f <= 1.0 for f in fills)  # every one near the budget, until those run out
    study.optimize(objective, n_trials=2)
    assert all(f <= 1.0 for f in [fill(Architecture(tiny_space.id, c)) for c in ev.calls])  # then any feasible
    # Without the floor, random draws land far below the budget.
    plain = optuna.create_study(direction="maximize", sampler=EvolutionSampler(
        space=tiny_space, feasibility=feasible_under(budgets), population_size=4, num_parents=2, seed=0))
    ev2 = FakeEvaluator(tiny_space)
    plain.optimize(ArchitectureObjective(space=tiny_space, evaluator=ev2, budgets=budgets), n_trials=10)
    assert min(fill(Architecture(tiny_space.id, c)) for c in ev2.calls) < MIN_FILL


def test_relative_budgets_need_a_reference(tiny_space):
    t1, t2 = FakeTable(tiny_space, name="a"), FakeTable(tiny_space, base=1.0, name="b")
    full = tiny_space.full()
    b = LatencyBudget.for_tables([t1, t2], ["0.5x"], reference=full)
    assert [x.budget_ms for x in b] == [pytest.approx(0.5 * t1.predict(full)), pytest.approx(0.5 * t2.predict(full))]
    mixed = LatencyBudget.for_tables([t1, t2], ["0.5x", "3ms"], reference=2.0)  # measured reference: 2 ms
    assert [x.budget_ms for x in mixed] == [pytest.approx(1.0), 3.0]
    with pytest.raises(NasPruneError, match="relative but no reference was given"):
        LatencyBudget.for_tables([t1], ["0.5x"])
    for bad in ("1.5x", "0x"):
        with pytest.raises(NasPruneError, match=r"fraction in \(0, 1\]"):
            LatencyBudget.for_tables([t1], [bad], reference=full)


def test_objective_from_pruningnet_checks_the_class_count_first(tiny_space):
    from nas_prune.data import load_data, select_classes
    from nas_prune.errors import DataError

    seven = select_classes(load_data("digits", input_size=16), range(7))
    with pytest.raises(DataError, match="the model has 10 outputs but dataset .* has 7 classes"):
        ArchitectureObjective.from_pruningnet(space=tiny_space, pnet=None, data=seven)  # refused before any scoring
