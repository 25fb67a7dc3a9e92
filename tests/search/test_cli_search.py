"""``nas-prune search`` end to end on real tiny artefacts: result file, resume, kill, 3 PostgreSQL workers."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from types import SimpleNamespace

import optuna
import pytest
from optuna.trial import TrialState

from nas_prune.search import PICK_ATTR, pick_trial
from tests.search.conftest import ROOT, cli_env, run_cli

pytestmark = pytest.mark.slow

FAST = ["--recal-batches", "1", "--val-batches", "2", "--eval-batch-size", "32", "--population-size", "4"]


def cli(*args, check=True, timeout=300):
    return run_cli(*args, check=check, timeout=timeout)


def search_args(a, out, *extra):
    return ["search", "--space", a / "space.json", "--pnet", a / "pnet.pt", "--table", a / "table.json",
            "--budget", "5ms", "-o", out, *FAST, *extra]


def study_of(url):
    name = optuna.study.get_all_study_names(url)[0]
    return optuna.load_study(study_name=name, storage=url)


def test_search_writes_best_and_resumes(tiny_artifacts, tmp_path):
    out = tmp_path / "run" / "best.json"
    cli(*search_args(tiny_artifacts, out, "--sampler", "evolution", "--n-trials", "4", "--seed", "0"))
    result = json.loads(out.read_text())
    assert result["format"] == "nas-prune/search-result" and result["n_complete"] == 4
    best = result["best"]
    assert set(best["architecture"]["channels"]) == {"stem.0", "block.0", "head.0"}
    assert 0.0 <= best["accuracy"] <= 1.0 and best["latency_ms"]["test-cpu"] <= 5.0
    assert best["flops"] > 0 and best["params"] > 0
    url = f"sqlite:///{out.parent / 'search.db'}"
    assert study_of(url).user_attrs["nas_prune"]["budgets"] == {"test-cpu": 5.0}
    # Re-running continues the same study up to the new total; nothing is evaluated twice.
    cli(*search_args(tiny_artifacts, out, "--sampler", "evolution", "--n-trials", "7", "--seed", "0"))
    study = study_of(url)
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 7 == len(study.trials)
    evaluated = [json.dumps(t.user_attrs["architecture"], sort_keys=True) for t in trials if t.user_attrs["evaluated"]]
    assert len(evaluated) == len(set(evaluated))
    # A study started with another budget is refused, not mixed.
    args = search_args(tiny_artifacts, out, "--n-trials", "9")
    args[args.index("5ms")] = "6ms"
    proc = cli(*args, check=False)
    assert proc.returncode == 2 and "other settings (budgets)" in proc.stderr


def test_multi_objective_writes_pareto_front(tiny_artifacts, tmp_path):
    out = tmp_path / "best.json"
    cli(*search_args(tiny_artifacts, out, "--sampler", "nsga2", "--n-trials", "5", "--multi-objective"))
    result = json.loads(out.read_text())
    assert result["directions"] == ["maximize", "minimize"]
    front = result["pareto_front"]
    assert front and result["best"] == front[0]
    # the front is over the objectives (score, predicted latency), not top-1: on another machine's profiled
    # fixture table a front point can have a lower score but a higher top-1 than its neighbour
    pts = [(p["score"], p["latency_ms"]["test-cpu"]) for p in front]
    assert all(tuple(p["values"]) == pt for p, pt in zip(front, pts))
    for a, b in pts:
        assert not any(a2 >= a and b2 <= b and (a2, b2) != (a, b) for a2, b2 in pts)


def test_unreachable_budget_exits_2_naming_it(tiny_artifacts, tmp_path):
    args = search_args(tiny_artifacts, tmp_path / "best.json", "--n-trials", "2")
    args[args.index("5ms")] = "1us"
    proc = cli(*args, check=False)
    assert proc.returncode == 2
    assert "budget 0.001 ms on test-cpu is unreachable" in proc.stderr and "predicted at" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_killed_search_resumes(tiny_artifacts, tmp_path):
    out = tmp_path / "best.json"
    url = f"sqlite:///{tmp_path / 'search.db'}"
    args = [sys.executable, "-m", "nas_prune", *map(str, search_args(tiny_artifacts, out, "--n-trials", "40",
                                                                      "--heartbeat", "1", "--sampler", "random"))]
    proc = subprocess.Popen(args, cwd=ROOT, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            time.sleep(0.3)
            try:
                states = Counter(t.state for t in study_of(url).trials)
            except Exception:
                continue  # the study is not created yet
            if states[TrialState.COMPLETE] >= 2 and states[TrialState.RUNNING]:
                break
        else:
            pytest.fail("the search made no progress")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    before = study_of(url)
    killed = [t.number for t in before.trials if t.state == TrialState.RUNNING]
    n_before = len(before.get_trials(states=(TrialState.COMPLETE,)))
    target = n_before + 2
    cli(*search_args(tiny_artifacts, out, "--n-trials", target, "--heartbeat", "1", "--sampler", "random"))
    after = study_of(url)
    states = Counter(t.state for t in after.trials)
    assert states[TrialState.COMPLETE] == target and states[TrialState.RUNNING] == 0
    for number in killed:  # the dead worker's trial is failed by its heartbeat and run again
        assert after.trials[number].state == TrialState.FAIL
        retried = [t for t in after.trials if t.system_attrs.get("failed_trial") == number]
        assert retried and retried[0].state == TrialState.COMPLETE
        # the same candidate (a trial killed while its sampler was still drawing has none or only its first genes)
        assert after.trials[number].params.items() <= retried[0].params.items()
    assert json.loads(out.read_text())["n_complete"] == target


def test_three_postgres_workers_share_one_study(tiny_artifacts, postgres_url, readme_postgres_url, tmp_path):
    n = 12
    procs = []
    for w in range(3):
        out = tmp_path / f"w{w}" / "best.json"
        args = search_args(tiny_artifacts, out, "--n-trials", n, "--storage", readme_postgres_url,
                           "--study-name", "shared", "--sampler", "evolution", "--seed", str(w))
        procs.append(subprocess.Popen([sys.executable, "-m", "nas_prune", *map(str, args)], cwd=ROOT, env=cli_env(),
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        for p in procs:
            stdout, stderr = p.communicate(timeout=400)
            assert p.returncode == 0, stderr
    finally:
        for p in procs:
            p.kill()
    study = optuna.load_study(study_name="shared", storage=postgres_url)
    trials = study.trials
    numbers = [t.number for t in trials]
    assert sorted(numbers) == list(range(len(trials)))  # none duplicated, none lost
    assert all(t.state == TrialState.COMPLETE for t in trials)  # every trial complete
    assert n <= len(trials) <= n + 2  # two workers checking at one instant may each add one
    assert all(t.user_attrs["feasible"] and "architecture" in t.user_attrs for t in trials)
    results = [json.loads((tmp_path / f"w{w}" / "best.json").read_text()) for w in range(3)]
    # Every worker reports the same pick, the documented rule's on the finished study, recorded in it once.
    budgets = [SimpleNamespace(name=name) for name in study.user_attrs["nas_prune"]["budgets"]]
    pick = pick_trial(study, budgets)
    assert {r["best"]["trial"] for r in results} == {pick.trial.number} == {study.user_attrs[PICK_ATTR]["trial"]}
    assert {r["pick"]["best_score_trial"] for r in results} == {study.best_trial.number}
    assert all(r["n_complete"] == len(trials) for r in results)  # every worker waited for the others


def test_relative_budget_is_a_fraction_of_the_unpruned_models_prediction(tiny_artifacts, tmp_path):
    from nas_prune.latency import LatencyTable
    from nas_prune.space import ChannelSpace

    out = tmp_path / "best.json"
    args = search_args(tiny_artifacts, out, "--n-trials", "2")
    args[args.index("5ms")] = "1x"
    cli(*args)
    space = ChannelSpace.load(tiny_artifacts / "space.json")
    full_ms = LatencyTable.load(tiny_artifacts / "table.json").predict(space.full())
    assert json.loads(out.read_text())["budgets"][0]["budget_ms"] == pytest.approx(full_ms)
