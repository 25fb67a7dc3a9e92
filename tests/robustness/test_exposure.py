"""Nothing nas-prune starts listens beyond loopback; NNI's all-interfaces port is named with its mitigation."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
import time

import pytest

from tests.robustness._files import run_main
from tests.search.conftest import ROOT, cli_env
from tests.search.test_cli_search import search_args

psutil = pytest.importorskip("psutil")


def _bound_sockets(pid: int) -> set[tuple[str, int, str]]:
    """(ip, port, kind) of every listening TCP or bound UDP socket of ``pid`` and its children."""
    found: set[tuple[str, int, str]] = set()
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return found
    for p in procs:
        try:
            conns = p.net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        for c in conns:
            if c.laddr and (c.status == psutil.CONN_LISTEN or (c.status == psutil.CONN_NONE and not c.raddr)):
                found.add((c.laddr.ip, c.laddr.port, "tcp" if c.status == psutil.CONN_LISTEN else "udp"))
    return found


def _loopback(ip: str) -> bool:
    return ipaddress.ip_address(ip.split("%")[0]).is_loopback


@pytest.mark.slow
def test_search_and_its_postgres_listen_on_loopback_only(search_artifacts, postgres_url, tmp_path):
    port = int(postgres_url.rsplit(":", 1)[1].split("/")[0])
    server = {(c.laddr.ip, c.laddr.port) for c in psutil.net_connections(kind="inet")
              if c.status == psutil.CONN_LISTEN and c.laddr.port == port}
    assert server and all(_loopback(ip) for ip, _ in server), server  # the test database server
    seen: set[tuple[str, int, str]] = set()
    for storage in ([], ["--storage", postgres_url]):  # the default local SQLite storage, then PostgreSQL
        args = search_args(search_artifacts, tmp_path / f"best{len(storage)}.json", "--n-trials", 4,
                           "--sampler", "random", *storage)
        proc = subprocess.Popen([sys.executable, "-m", "nas_prune", *map(str, args)], cwd=ROOT, env=cli_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            while proc.poll() is None:
                seen |= _bound_sockets(proc.pid)
                time.sleep(0.05)
        finally:
            proc.kill()
            _, err = proc.communicate()
        assert proc.returncode == 0, err[-1500:]
    exposed = {s for s in seen if not _loopback(s[0])}
    assert not exposed, f"nas-prune listened beyond loopback: {exposed}"


def test_a_refused_nni_command_prints_no_port_warning(capsys):
    code, _, err = run_main(capsys, "nni", "--port", "18765")  # no space given: refused before NNI starts
    assert code == 2 and "every network interface" not in err and "needs --space" in err


@pytest.mark.slow
def test_nni_port_warning_names_the_port_and_the_mitigation(capsys, monkeypatch, search_artifacts, tmp_path):
    """Printed when NNI is about to start (here NNI's start is made to fail, so nothing listens)."""
    from types import SimpleNamespace

    from nas_prune.search import _nni

    class Refused:
        def __init__(self, config, id=None):  # noqa: A002 (NNI's own argument name)
            self.id, self.config = "refused", config

        def start(self, port, run_mode=None):
            raise OSError("address already in use")

    real = _nni._nni()
    monkeypatch.setattr(_nni, "_nni", lambda: SimpleNamespace(Experiment=Refused, ExperimentConfig=real.ExperimentConfig))
    a = search_artifacts
    code, _, err = run_main(capsys, "nni", "--space", str(a / "space.json"), "--pnet", str(a / "pnet.pt"), "--table",
                            str(a / "table.json"), "--budget", "5ms", "-o", str(tmp_path / "best.json"),
                            "--port", "18765")
    assert code == 2 and "NNI could not start the experiment on port 18765" in err
    warning = err.splitlines()[0]
    assert "18765" in warning and "every network interface" in warning
    assert "ssh -L 18765:127.0.0.1:18765" in warning and "Firewall the port" in warning
    docs = (ROOT / "docs" / "pipeline.md").read_text()
    assert "ssh -L" in docs and "every network interface" in docs  # the mitigation the docs document
