"""optuna-dashboard's own API and Optuna's own plots see nas-prune's constraints and metric names."""

from __future__ import annotations

import io
import json
import math

import optuna
import pytest

from nas_prune.search import ArchitectureObjective, LatencyBudget, constraint_values, min_latency_architecture
from tests.search.standins import FakeEvaluator, FakeTable

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _study(tiny_space, storage, *, multi=False, trials=12):
    table = FakeTable(tiny_space)
    full, fastest = table.predict(tiny_space.full()), table.predict(min_latency_architecture(tiny_space))
    budgets = LatencyBudget.for_tables([table], [f"{(full + fastest) / 2}ms"])
    objective = ArchitectureObjective(space=tiny_space, evaluator=FakeEvaluator(tiny_space), budgets=budgets,
                                      multi_objective=multi)
    study = optuna.create_study(storage=storage, directions=objective.directions,
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial({g.name: g.high for g in tiny_space.searchable_genes})  # the first is over budget
    study.optimize(objective, n_trials=trials)
    return study, budgets[0]


def _dashboard_get(storage, path):
    """GET ``path`` from optuna-dashboard's bottle app, in process (WSGI, no server, no browser)."""
    from optuna_dashboard import _app

    app = _app.create_app(storage)
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
               "SERVER_PORT": "0", "wsgi.input": io.BytesIO(), "wsgi.url_scheme": "http", "wsgi.errors": io.StringIO()}
    status: list[str] = []
    body = b"".join(app(environ, lambda s, h, exc=None: status.append(s)))
    assert status[0].startswith("200"), (status, body[:300])
    return json.loads(body)


def test_dashboard_api_reports_constraints_and_metric_names(tiny_space):
    pytest.importorskip("optuna_dashboard")
    storage = optuna.storages.InMemoryStorage()
    study, budget = _study(tiny_space, storage)
    detail = _dashboard_get(storage, f"/api/studies/{study._study_id}")
    assert detail["objective_names"] == ["score"] or detail.get("metric_names") == ["score"]
    trials = {t["number"]: t for t in detail["trials"]}
    assert len(trials) == 12
    n_infeasible = 0
    for frozen in study.trials:
        shown = trials[frozen.number]["constraints"]
        expected = frozen.user_attrs[f"latency_ms:{budget.name}"] - budget.budget_ms
        assert shown == [pytest.approx(expected)]
        n_infeasible += shown[0] > 0
    assert trials[0]["constraints"][0] > 0 and 0 < n_infeasible < 12  # both kinds are present


def test_constraints_keep_their_names_beside_the_dashboard_list(tiny_space):
    study, budget = _study(tiny_space, None, trials=4)
    for t in study.trials:
        assert t.constraints[budget.name] == pytest.approx(t.system_attrs["constraints"][0])
        assert constraint_values(t) == [pytest.approx(t.constraints[budget.name])]
    assert study.metric_names == ["score"]
    multi, _ = _study(tiny_space, None, multi=True, trials=3)
    assert multi.metric_names == ["score", f"latency_ms:{budget.name}"]


def test_optuna_plots_never_show_an_infeasible_best_value(tiny_space):
    """``plot_optimization_history``: the best-value line only steps on feasible trials."""
    pytest.importorskip("plotly")
    from optuna.visualization import plot_optimization_history, plot_pareto_front

    study, _ = _study(tiny_space, None, trials=15)
    feasible = [all(v <= 0 for v in t.constraints.values()) for t in study.trials]
    assert not feasible[0] and any(feasible)
    fig = plot_optimization_history(study)
    best_line = next(d for d in fig.data if d.name == "Best Value")
    running = -math.inf
    for value, (t, ok) in zip(best_line.y, zip(study.trials, feasible)):
        running = max(running, t.value) if ok else running
        assert value == running  # -inf until the first feasible trial; infeasible ones never raise it
    assert any(d.name == "Infeasible Trial" for d in fig.data)

    multi, _ = _study(tiny_space, None, multi=True, trials=15)
    fig = plot_pareto_front(multi)  # Optuna >= 4 reads trial.constraints itself
    kind = {d.hovertemplate.split("<extra>")[1].split("</extra>")[0]: d for d in fig.data}
    shown = {name: {json.loads(t.replace("<br>", ""))["number"] for t in d.text} for name, d in kind.items()}
    infeasible = {t.number for t in multi.trials if any(v > 0 for v in t.constraints.values())}
    assert infeasible and shown["Infeasible Trial"] == infeasible
    assert shown["Best Trial"] == {t.number for t in multi.best_trials} and not shown["Best Trial"] & infeasible
