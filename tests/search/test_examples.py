"""The examples run as written (with small settings through their environment variables)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.search.conftest import ROOT, _free_port, cli_env

pytestmark = pytest.mark.slow

SMALL = {"EXAMPLE_TRIALS": "4", "EXAMPLE_EPOCHS": "1", "EXAMPLE_NETS": "8"}


def test_optuna_example_runs(tmp_path):
    """The tutorial, as a new user runs it: own 7-class model and tensors, relative budget, any sampler."""
    env = {**cli_env(), **SMALL, "EXAMPLE_OUT": str(tmp_path / "run")}
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "optuna_search.py")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("best trial"))
    ms, budget = line.split(", ")[1].split(" ms")[0], line.split("(budget ")[1].split(" ms")[0]
    assert float(ms) <= float(budget)
    assert "metric names ['score']" in proc.stdout and "budget 0.7x = " in proc.stdout
    assert "Optuna's best_trial: " in proc.stdout and "nas-prune's pick: " in proc.stdout
    assert "pruned model: " in proc.stdout and (tmp_path / "run" / "history.html").exists()
    assert (tmp_path / "run" / "study.db").exists() and (tmp_path / "run" / "pnet.pt").exists()
    # Optuna's own TPESampler on the same study: the table and the PruningNet are reused (resumed).
    env.update(EXAMPLE_SAMPLER="tpe", EXAMPLE_TRIALS="6")
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "optuna_search.py")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "6 trials" in proc.stdout


def test_nni_example_runs_through_its_config(tmp_path):
    pytest.importorskip("nni", reason="nni is not importable (pip install 'nas-prune[nni]')")
    from nni.experiment import Experiment, ExperimentConfig

    work = tmp_path / "nni"
    shutil.copytree(ROOT / "examples" / "nni", work, ignore=shutil.ignore_patterns("__pycache__"))
    env = {**cli_env(), **SMALL}
    proc = subprocess.run([sys.executable, "prepare.py"], cwd=work, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    config = ExperimentConfig.load(str(work / "config.yml"))
    config.trial_command = config.trial_command.replace("python3", sys.executable)  # this test's venv
    config.max_trial_number = 2
    config.experiment_working_directory = str(tmp_path / "experiments")
    port = _free_port()
    experiment = Experiment(config)
    try:
        experiment.start(port)
        deadline = time.time() + 300
        while time.time() < deadline and experiment.get_status() not in ("DONE", "ERROR", "STOPPED"):
            time.sleep(2)
        assert experiment.get_status() == "DONE"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/nni/metric-data", timeout=10) as r:
            finals = [json.loads(m["data"]) for m in json.loads(r.read()) if m["type"] == "FINAL"]
        finals = [json.loads(f) if isinstance(f, str) else f for f in finals]
        assert len(finals) == 2
        for m in finals:
            assert {"default", "feasible", "evaluated", "latency_ms:this-cpu", "flops", "params"} <= set(m)
            # an over-budget trial is not evaluated and has no accuracy (no fake 0.0)
            assert ("accuracy" in m) == bool(m["feasible"]) == bool(m["evaluated"])
            assert (m["feasible"] == 1) == (m["default"] >= 0)
    finally:
        experiment.stop()
