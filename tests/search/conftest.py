"""Fixtures of the search tests: real tiny artefacts (space, latency table, PruningNet) and PostgreSQL."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def cli_env() -> dict[str, str]:
    """Environment of a ``nas-prune`` subprocess: the tiny test model importable, one thread, quiet."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(NAS_PRUNE_PROGRESS="0", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def run_cli(*args, check=True, timeout=300):
    """Run ``nas-prune ARGS`` in a subprocess (``cli_env``); raise with its output unless it succeeds."""
    proc = subprocess.run([sys.executable, "-m", "nas_prune", *map(str, args)], cwd=ROOT, env=cli_env(),
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def tiny_artifacts(tiny_space, tmp_path_factory):
    """A real latency table and a real (briefly trained) PruningNet of the tiny space."""
    pytest.importorskip("nas_prune.latency")
    pytest.importorskip("nas_prune.pruningnet")
    from nas_prune.data import load_data
    from nas_prune.latency import build_table
    from nas_prune.pruningnet import train_pruningnet

    d = tmp_path_factory.mktemp("artifacts")
    tiny_space.save(d / "space.json")
    build_table(tiny_space, output=d / "table.json", nets=8, rounds=3, runs_per_round=5, warmup=2,
                device_name="test-cpu")
    bundle = load_data("digits", input_size=tiny_space.input_shape[-1], train_subset=256)
    train_pruningnet(tiny_space, bundle, epochs=1, checkpoint=d / "pnet.pt")
    return d


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    exe = shutil.which("initdb")
    return Path(exe).parent if exe else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres_url():
    """A throw-away PostgreSQL server on 127.0.0.1 (own data dir and port), stopped afterwards."""
    pytest.importorskip("psycopg2", reason="psycopg2 is not installed (pip install 'nas-prune[postgres]')")
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are absent: apt-get install postgresql")
    root = Path(tempfile.mkdtemp(prefix="nasprune-pg-"))
    data, port = root / "data", _free_port()
    prefix: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root: run it as the postgres user
        prefix = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
        os.chmod(root, 0o700)
    def run(*cmd: str) -> None:
        subprocess.run([*prefix, *cmd], check=True, capture_output=True, timeout=120)

    run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off -c max_connections=50"
    try:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "-t", "60", "start")
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def readme_postgres_url(postgres_url):
    """The throw-away server's URL as the README writes it: ``postgresql://`` without a driver."""
    return postgres_url.replace("postgresql+psycopg2://", "postgresql://", 1)
