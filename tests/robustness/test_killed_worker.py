"""Three ``nas-prune search`` workers on one study (PostgreSQL, and SQLite); one is SIGKILLed mid-trial.

The study must end with every trial complete or failed (by the heartbeat), none duplicated, the dead
worker's trial run again by a survivor, and a feasible best trial that every survivor reports. A
worker that dies before its trial's first heartbeat must not leave the survivors waiting either.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import threading
import sys
import time
from collections import Counter

import pytest

from tests.search.conftest import ROOT, cli_env
from tests.search.test_cli_search import search_args

optuna = pytest.importorskip("optuna")
from optuna.trial import TrialState  # noqa: E402


# Trials long enough (~1 s) that all three workers are inside one at the same time.
SLOWER = ["--recal-batches", "20", "--val-batches", "20", "--eval-batch-size", "8"]


def _states(conn) -> Counter:  # noqa: ANN001
    """Trial states straight from Optuna's table (polling through load_study is too slow to catch overlaps)."""
    try:
        cur = conn.cursor()
        cur.execute("SELECT state, count(*) FROM trials GROUP BY state")
        states = Counter({str(state).split(".")[-1]: k for state, k in cur.fetchall()})
        # Running trials inside their objective (they have sent a heartbeat): killing the worker
        # then kills a trial mid-way. (The death before a first heartbeat is the test below.)
        cur.execute("SELECT count(*) FROM trials t JOIN trial_heartbeats h ON t.trial_id = h.trial_id "
                    "WHERE t.state = 'RUNNING'")
        states["RUNNING_WITH_HEARTBEAT"] = cur.fetchone()[0]
        cur.close()
        return states
    except Exception:
        conn.rollback()
        return Counter()  # the schema is not created yet


@pytest.fixture(params=["postgresql", "sqlite"])
def shared_storage(request, tmp_path):
    """(SQLAlchemy URL, DB-API connection to poll it) of a fresh shared study database."""
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
        psycopg2 = pytest.importorskip("psycopg2")
        conn = psycopg2.connect(url.replace("postgresql+psycopg2", "postgresql"))
        conn.autocommit = True
    else:
        path = tmp_path / "shared.db"
        url = f"sqlite:///{path}"
        conn = sqlite3.connect(path, timeout=60, isolation_level=None)
    try:
        yield url, conn
    finally:
        conn.close()


def _running_numbers(conn) -> set[int]:  # noqa: ANN001
    cur = conn.cursor()
    cur.execute("SELECT number FROM trials WHERE state = 'RUNNING'")
    numbers = {n for (n,) in cur.fetchall()}
    cur.close()
    return numbers


def _trials(url: str) -> list:
    try:
        return optuna.load_study(study_name="shared", storage=url).trials
    except Exception:
        return []  # not created yet


@pytest.mark.slow
def test_killed_worker_trial_is_failed_and_rerun(search_artifacts, shared_storage, tmp_path):
    storage_url, conn = shared_storage
    n = 30  # study-wide: enough trials that all three workers overlap before it ends (14 was flaky under load)
    procs = []
    for w in range(3):
        args = search_args(search_artifacts, tmp_path / f"w{w}" / "best.json", "--n-trials", n, "--storage", storage_url,
                           "--study-name", "shared", "--sampler", "random", "--seed", str(w), "--heartbeat", "2",
                           *SLOWER)
        procs.append(subprocess.Popen([sys.executable, "-m", "nas_prune", *map(str, args)], cwd=ROOT, env=cli_env(),
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      start_new_session=True))
    victim = procs[0]
    try:
        deadline = time.time() + 300
        while time.time() < deadline:  # every worker is inside a trial: killing one kills a trial
            states = _states(conn)
            if states["RUNNING"] >= 3 and states["RUNNING_WITH_HEARTBEAT"] >= 3 and states["COMPLETE"] >= 1:
                # read before the kill: a survivor may fail the dead trial before a slower read
                running_at_kill = _running_numbers(conn)
                os.killpg(victim.pid, signal.SIGKILL)
                break
            ended = [p for p in procs if p.poll() is not None]
            if ended:
                pytest.fail(f"a worker ended before all three were running trials: {ended[0].stderr.read()[-1500:]}")
            time.sleep(0.02)
        else:
            pytest.fail("the workers made no progress")
        victim.wait()
        for p in procs[1:]:
            _, stderr = p.communicate(timeout=200)
            assert p.returncode == 0, stderr[-2000:]
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()

    study = optuna.load_study(study_name="shared", storage=storage_url)
    trials = study.trials
    assert sorted(t.number for t in trials) == list(range(len(trials)))  # none duplicated, none lost
    states = Counter(t.state for t in trials)
    assert set(states) <= {TrialState.COMPLETE, TrialState.FAIL}, states  # nothing left running or queued
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(failed) == 1 and failed[0].number in running_at_kill  # the dead worker's trial, failed by heartbeat
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == failed[0].number]
    assert len(retried) == 1 and retried[0].state == TrialState.COMPLETE
    # the same candidate, run again by a survivor (a trial killed while suggesting has only its first genes)
    assert failed[0].params.items() <= retried[0].params.items()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert n <= len(complete) <= n + 2
    assert all(t.user_attrs["feasible"] for t in complete)
    results = [json.loads((tmp_path / f"w{w}" / "best.json").read_text()) for w in (1, 2)]
    best = {r["best"]["trial"] for r in results}
    assert len(best) == 1
    assert study.trials[best.pop()].user_attrs["feasible"]
    assert not (tmp_path / "w0" / "best.json").exists()  # the killed worker wrote nothing half-way


def test_trial_of_a_worker_killed_before_its_first_heartbeat_is_failed_and_rerun(tmp_path):
    """Optuna's own stale check skips a RUNNING trial with no heartbeat row; ours fails and retries it."""
    from optuna.distributions import FloatDistribution

    from nas_prune.search._study import open_study, run_trials

    study = open_study(storage=f"sqlite:///{tmp_path / 'study.db'}", study_name="s", directions=["maximize"],
                       sampler=optuna.samplers.RandomSampler(seed=0), heartbeat_interval=1, grace_period=2)
    # A trial created (RUNNING) by a worker that died before its heartbeat thread's first beat.
    orphan = study.ask({"x": FloatDistribution(0.0, 1.0)})
    finished = threading.Event()
    done: list[int] = []

    def survivor() -> None:
        done.append(run_trials(study, lambda t: t.suggest_float("x", 0.0, 1.0), 3, poll_seconds=0.1))
        finished.set()

    threading.Thread(target=survivor, daemon=True).start()
    assert finished.wait(60), "the surviving worker waits forever for the dead worker's trial"
    trials = study.get_trials()
    states = Counter(t.state for t in trials)
    assert done == [3] and states == {TrialState.COMPLETE: 3, TrialState.FAIL: 1}, states
    assert trials[orphan.number].state == TrialState.FAIL
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == orphan.number]
    assert len(retried) == 1 and retried[0].state == TrialState.COMPLETE
    assert retried[0].params == {"x": trials[orphan.number].params["x"]}  # the same candidate, run again
