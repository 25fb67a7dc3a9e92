"""Run a nas-prune command, SIGKILL it part-way, run it again: the harness of the interrupt tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

ROOT = Path(__file__).resolve().parents[2]
# PYTHONPATH: the subprocess must import tests.conftest:tiny_resnet, whatever the caller's cwd.
ENV = {**os.environ, "NAS_PRUNE_PROGRESS": "0", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
       "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}


def cli(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nas_prune", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env=ENV, timeout=timeout)


def kill_when(args: Sequence[str], ready: Callable[[], bool], *, cwd: Path | None = None,
              timeout: float = 300) -> bool:
    """Start ``nas-prune ARGS``; SIGKILL it as soon as ``ready()`` holds. True if it was killed mid-way."""
    proc = subprocess.Popen([sys.executable, "-m", "nas_prune", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=cwd or ROOT, env=ENV, start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if ready():
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return True
            if proc.poll() is not None:
                return False  # finished before the point we wanted to kill at
            time.sleep(0.05)
        raise TimeoutError(f"nas-prune {' '.join(args)} did not reach the kill point")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def checkpoint_field(path: Path, key: str, default=None):  # noqa: ANN001, ANN201
    """A field of a torch checkpoint, or ``default`` while it is absent or being written."""
    from nas_prune.export import load_checkpoint

    if not path.exists():
        return default
    try:
        return load_checkpoint(path).get(key, default)
    except Exception:
        return default
