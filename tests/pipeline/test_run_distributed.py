"""``nas-prune run --nproc 2``: the training stages in DDP on 2 CPU processes (gloo), the rest on rank 0.

The same stages and files as one process; a SIGKILL of one rank in the PruningNet stage ends the job
(torchrun's agent stops the other rank) and the same command resumes it from its checkpoint.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from nas_prune.pipeline.stages import stage_names
from tests.pipeline.test_run import TINY
from tests.robustness._kill import ENV, ROOT, checkpoint_field, cli

STAGES = stage_names()  # every stage, in the registry's order


def _leftovers(out: Path) -> list[str]:
    return [p.name for p in out.rglob(".*.tmp")]


@pytest.mark.slow
def test_run_with_two_processes_writes_the_run_of_one(tmp_path):
    out = tmp_path / "run"
    r = cli("run", *TINY, "--out", str(out), "--nproc", "2", timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    printed = json.loads(r.stdout[r.stdout.index("{"):])  # one process (rank 0) printed the result
    summary = json.loads((out / "summary.json").read_text())
    assert printed["final_accuracy"] == summary["final"]["accuracy"] and summary["feasible"] is True
    assert list(json.loads((out / "stages.json").read_text())) == STAGES
    for rel in summary["artifacts"].values():
        assert (out / rel).exists(), rel
    assert not _leftovers(out)
    assert r.stderr.count("▶ pruningnet") == 1  # rank 0 speaks for both
    config = json.loads((out / "config.json").read_text())
    assert config["batch_size"] == 64  # the global batch: 32 per process
    assert summary["training_processes"] == {"processes": 2, "batch_size": 64, "per_process_batch": 32,
                                             "backend": "gloo"}


def _rank(launcher: psutil.Process, rank: int) -> psutil.Process | None:
    for p in launcher.children(recursive=True):
        try:
            if p.environ().get("RANK") == str(rank) and "nas_prune" in " ".join(p.cmdline()):
                return p
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return None


@pytest.mark.slow
def test_a_killed_rank_ends_the_job_and_the_same_command_resumes(tmp_path):
    tiny = list(TINY)
    tiny[tiny.index("--pnet-epochs") + 1] = "8"
    tiny[tiny.index("--n-trials") + 1] = "4"
    out = tmp_path / "run"
    args = ["run", *tiny, "--out", str(out), "--nproc", "2"]
    proc = subprocess.Popen([sys.executable, "-m", "nas_prune", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=ROOT, env=ENV, start_new_session=True)
    ckpt = out / "pnet.ckpt"
    try:
        deadline = time.monotonic() + 600
        while (checkpoint_field(ckpt, "epoch", 0) or 0) < 2:
            assert proc.poll() is None, "the run ended before the PruningNet stage"
            assert time.monotonic() < deadline, "the PruningNet checkpoint did not come"
            time.sleep(0.1)
        victim = _rank(psutil.Process(proc.pid), 1)
        assert victim is not None
        victim.send_signal(signal.SIGKILL)
        code = proc.wait(timeout=300)  # torchrun stops rank 0 and exits with an error
        assert code != 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    done = checkpoint_field(ckpt, "epoch", 0)
    assert 2 <= done < 8 and not (out / "pnet.pt").exists()
    r = cli(*args, timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    for stage in STAGES[:STAGES.index("pruningnet")]:
        assert re.search(rf"· {stage}\s+cached", r.stderr), stage
    stages = json.loads((out / "stages.json").read_text())
    assert list(stages) == STAGES and stages["pruningnet"]["result"]["settings"]["epochs"] == 8
    assert not ckpt.exists() and not _leftovers(out)
