"""A real NNI 3.0 experiment of a few trials on the tiny model, read back through NNI's REST API."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.search.conftest import ROOT, _free_port, cli_env, run_cli

pytestmark = pytest.mark.slow

FAST = ["--recal-batches", "1", "--val-batches", "2", "--eval-batch-size", "32"]


def cli(*args, check=True, timeout=400):
    return run_cli(*args, check=check, timeout=timeout)


def _listening_ips(port: int) -> set[str]:
    psutil = pytest.importorskip("psutil")
    return {c.laddr.ip for c in psutil.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port}


def rest(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/nni{path}", timeout=10) as r:
        return json.loads(r.read())


def final_results(port):
    out = {}
    for m in rest(port, "/metric-data"):
        if m["type"] == "FINAL":
            value = json.loads(m["data"])
            out[m["trialJobId"]] = json.loads(value) if isinstance(value, str) else value
    return out


def test_trial_scores_a_candidate_outside_nni(tiny_artifacts, tmp_path, tiny_space):
    from nas_prune.search.nni_trial import write_trial_config

    cfg = write_trial_config(tmp_path / "trial.json", space=tiny_artifacts / "space.json", pnet=tiny_artifacts / "pnet.pt",
                             tables=[tiny_artifacts / "table.json"], budgets_ms=[1e-6], names=["test-cpu"],
                             recal_batches=1, val_batches=1, batch_size=16)
    proc = subprocess.run([sys.executable, "-m", "nas_prune.search.nni_trial", "--config", str(cfg),
                           "--params", json.dumps({"stem.0": 8, "block.0": 16, "head.0": 8})],
                          cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(proc.stdout.strip().splitlines()[-1])
    # Over budget: not evaluated, and scored below any accuracy.
    assert metrics["feasible"] == 0 and metrics["default"] < -1.0 and metrics["latency_ms:test-cpu"] > 1e-6


def test_nni_experiment_reports_stops_and_resumes(tiny_artifacts, tmp_path):
    pytest.importorskip("nni", reason="nni is not importable (pip install 'nas-prune[nni]')")
    port = _free_port()
    out = tmp_path / "best.json"
    started = None
    try:
        proc = cli("nni", "--space", tiny_artifacts / "space.json", "--pnet", tiny_artifacts / "pnet.pt",
                   "--table", tiny_artifacts / "table.json", "--budget", "5ms", "--trials", "3", "--concurrency", "1",
                   "--port", port, "-o", out, "--detach", *FAST)
        assert "binds its web UI port" in proc.stderr and "SSH tunnel" in proc.stderr
        # The warning tells the truth: NNI 3.0's manager really listens beyond loopback on that port.
        warning = next(line for line in proc.stderr.splitlines() if "binds its web UI port" in line)
        assert str(port) in warning and "every network interface" in warning
        listeners = _listening_ips(port)
        assert listeners and any(not ipaddress.ip_address(ip.split("%")[0]).is_loopback for ip in listeners), listeners
        started = proc.stdout.split("NNI experiment ")[1].split(":")[0]
        deadline = time.time() + 300
        while time.time() < deadline and not final_results(port):
            time.sleep(2)
        first = final_results(port)
        assert first, "no trial finished"
        for metrics in first.values():
            assert 0.0 <= metrics["default"] <= 1.0 and metrics["feasible"] == 1
            assert metrics["default"] == metrics["score"] and 0.0 <= metrics["accuracy"] <= 1.0  # the PruningNet score
            assert metrics["latency_ms:test-cpu"] <= 5.0
            assert set(json.loads(metrics["channels"])) == {"stem.0", "block.0", "head.0"}
        assert rest(port, "/experiment")["params"]["searchSpace"]["block.0"]["_type"] == "quniform"

        stopped = cli("nni", "--stop", "--port", port)
        assert started in stopped.stdout
        with pytest.raises(OSError):
            rest(port, "/check-status")

        # Resume: the finished trials are kept, the rest run, the best is written.
        cli("nni", "--resume", started, "--port", port)
        result = json.loads(out.read_text())
        assert result["experiment"] == started and result["n_complete"] == 3 and result["n_feasible"] == 3
        assert set(first) < {t["trial"] for t in result["trials"]}  # kept, and more ran after the resume
        assert result["best"]["score"] == max(t["score"] for t in result["trials"] if t["feasible"])  # the tuner's metric
        started = None
    finally:
        if started is not None:
            subprocess.run([sys.executable, "-m", "nas_prune", "nni", "--stop", "--port", str(port)], cwd=ROOT,
                           env=cli_env(), capture_output=True, timeout=120)


def test_keep_leaves_the_web_ui_up_in_view_mode(tiny_artifacts, tmp_path, monkeypatch):
    pytest.importorskip("nni", reason="nni is not importable (pip install 'nas-prune[nni]')")
    from nas_prune.search._nni import launch_nni_experiment, stop_experiment
    from tests.search.conftest import cli_env

    monkeypatch.setenv("PYTHONPATH", cli_env()["PYTHONPATH"])  # the trials import the test model (tests.conftest)

    port = _free_port()
    said: list[str] = []
    try:
        result = launch_nni_experiment(space_file=tiny_artifacts / "space.json", pnet=tiny_artifacts / "pnet.pt",
                                       tables=[tiny_artifacts / "table.json"], budgets=["5ms"], trials=1, port=port,
                                       output=tmp_path / "best.json", keep=True, recal_batches=1, val_batches=2,
                                       batch_size=32, echo=said.append, on_start=lambda: said.append("starting"))
        assert "starting" in said and result["n_complete"] == 1  # after the tables' calibration lines
        # The experiment is over, and its web UI and REST API still answer, read-only.
        assert rest(port, "/check-status")["status"] == "VIEWED"
        (metrics,) = final_results(port).values()
        assert {"default", "accuracy", "feasible", "evaluated", "latency_ms:test-cpu", "flops", "params"} <= set(metrics)
        assert any("stays at http://127.0.0.1:" in line for line in said)
    finally:
        stop_experiment(port=port)
    with pytest.raises(OSError):
        rest(port, "/check-status")
