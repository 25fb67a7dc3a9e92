"""Atomic writes: a writer killed between its temporary file and the rename leaves nothing behind
once the file is written again."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from nas_prune._io import _HOST, atomic_write_bytes


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_rewrite_removes_temporaries_of_killed_writers_only(tmp_path: Path) -> None:
    dead = tmp_path / f".checkpoint.pt.{_HOST}-{_dead_pid()}.x1.tmp"
    live = tmp_path / f".checkpoint.pt.{_HOST}-{os.getppid()}.x2.tmp"  # a running writer
    other_host = tmp_path / f".checkpoint.pt.0000beef-{_dead_pid()}.x3.tmp"  # shared filesystem
    other_file = tmp_path / f".metrics.json.{_HOST}-{_dead_pid()}.x4.tmp"
    for p in (dead, live, other_host, other_file):
        p.write_bytes(b"half")
    atomic_write_bytes(tmp_path / "checkpoint.pt", b"whole")
    assert (tmp_path / "checkpoint.pt").read_bytes() == b"whole"
    assert not dead.exists()
    assert live.exists() and other_host.exists() and other_file.exists()

