"""Multi-threaded CPU timing in a process of its own, whose sessions share one intra-op thread pool.

onnxruntime gives every session its own intra-op thread pool by default, and a pool's threads
spin for a while after each run, waiting for more work. The interleaved protocol
(:func:`nas_prune.on_device._timing.time_interleaved`) keeps nine or more sessions alive and switches
between them every few milliseconds, so at 2 threads on a 2-vCPU machine every network ran while
the previous session's threads still spun on the other core. Measured on the development VM
(``benchmarks/latency_threads.py``, resnet18-32, 8 random networks and the reference, 30 rounds):
the per-round ratios spread by 40-56 % (median IQR / ratio) and the same networks timed twice
disagreed by up to 40 %; with one shared pool the spread was 1-2 %, the retest within 3-5 %, the
reference as fast as a lone session's (0.50 vs 0.49 ms) and a group timed 3.4 times faster. A
deployed network runs in one session, so the shared pool is also the faithful protocol.

onnxruntime's global thread pool is process-wide and final: once it exists, every later session of
the process must use it (``use_per_session_threads = False``), whatever its thread count. A library
cannot impose that on its host process, so CPU timing with ``threads > 1`` runs in a worker
(:func:`serve` in a child Python: numpy and onnxruntime only, never torch), one per
thread count, kept for the life of the calling process; ONNX models travel as files, rounds come
back as JSON lines. One thread has no pool to share and is timed in-process.
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterable, Mapping

from nas_prune.errors import InvalidFileError, NasPruneError
from nas_prune.on_device._timing import SessionRunner, TimingSettings, make_session, time_interleaved

__all__ = ["TIMING_PROTOCOL", "uses_worker", "time_models", "close_workers", "serve"]

#: Version of the timing protocol recorded with every calibration. 2: CPU timing with more than one
#: thread in the shared-pool worker; tables calibrated under 1 (per-session pools) are foreign at > 1 thread.
TIMING_PROTOCOL = 2

Model = bytes | str | os.PathLike[str]


def uses_worker(settings: TimingSettings) -> bool:
    """Whether models timed with ``settings`` go to a worker (the CPU provider with more than one thread)."""
    return settings.provider == "cpu" and settings.threads > 1


def _in_process(models: Mapping[str, Model], settings: TimingSettings, seeds: Mapping[str, int],
                whats: Mapping[str, str], *, shared_pool: bool = False) -> dict[str, list[list[float]]]:
    runners = {name: SessionRunner(make_session(m, settings, what=whats.get(name, f"model {name!r}"),
                                                shared_pool=shared_pool), settings, seed=int(seeds.get(name, 0)))
               for name, m in models.items()}
    return time_interleaved(runners, settings)


class _Worker:
    """One worker process for one thread count."""

    def __init__(self, threads: int) -> None:
        root = str(Path(__file__).resolve().parents[2])  # so the child imports this very nas_prune
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
        self.threads = threads
        self.proc = subprocess.Popen([sys.executable, "-c", _MAIN, str(threads)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, bufsize=1)
        self.hello = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            raise NasPruneError(f"the {self.threads}-thread timing worker exited (code {code}): see its error "
                                "above; check that onnxruntime imports in this Python")
        return dict(json.loads(line))

    def ask(self, request: Mapping[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # _read reports the exit
        return self._read()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()


_MAIN = "import sys; from nas_prune.on_device._worker import serve; serve(int(sys.argv[1]), sys.stdin)"
_WORKERS: dict[int, _Worker] = {}
_LOCK = threading.Lock()


def close_workers() -> None:
    """Stop the worker processes (they also stop when this process exits)."""
    with _LOCK:
        for w in _WORKERS.values():
            w.close()
        _WORKERS.clear()


atexit.register(close_workers)


def time_models(models: Mapping[str, Model], settings: TimingSettings, *, seeds: Mapping[str, int] | None = None,
                whats: Mapping[str, str] | None = None, isolate: bool | None = None) -> dict[str, list[list[float]]]:
    """Time ONNX models round-robin (:func:`~nas_prune.on_device._timing.time_interleaved`), in a worker if needed.

    Args:
        models: ``{name: ONNX bytes or path}``, in the order of the rounds.
        settings: How to time them.
        seeds: Seed of each model's random input (default 0).
        whats: How errors name each model (default ``model 'name'``).
        isolate: Force the worker on or off (default: :func:`uses_worker`). Off at ``threads > 1``
            gives the old per-session pools (kept to measure what the worker changes).

    Returns:
        ``{name: [[seconds of round 0], [round 1], ...]}``.

    Raises:
        InvalidFileError: a model is not a loadable ONNX graph.
        NasPruneError: the worker could not start or died.
    """
    seeds, whats = dict(seeds or {}), dict(whats or {})
    if not (uses_worker(settings) if isolate is None else isolate):
        return _in_process(models, settings, seeds, whats)
    with tempfile.TemporaryDirectory(prefix="nas-prune-timing-") as tmp, _LOCK:
        entries = []
        for i, (name, m) in enumerate(models.items()):
            if isinstance(m, bytes):
                path = Path(tmp) / f"{i}.onnx"
                path.write_bytes(m)
                m = path
            entries.append([name, os.fspath(m), int(seeds.get(name, 0)), whats.get(name, f"model {name!r}")])
        worker = _WORKERS.get(settings.threads)
        if worker is None or worker.proc.poll() is not None:
            worker = _WORKERS[settings.threads] = _Worker(settings.threads)
        reply = worker.ask({"settings": settings.to_json(), "models": entries})
    if not reply.get("ok"):
        error = InvalidFileError if reply.get("type") == "InvalidFileError" else NasPruneError
        raise error(str(reply.get("error", "the timing worker failed")))
    return {str(k): [list(map(float, r)) for r in v] for k, v in reply["rounds"].items()}


def serve(threads: int, lines: Iterable[str]) -> None:
    """The worker's loop: one JSON request per line of ``lines``, one JSON reply per line on stdout."""
    import onnxruntime as ort
    from onnxruntime.capi import _pybind_state

    # replies own the real stdout; anything else printed (onnxruntime's fallback notices) goes to stderr
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    ort.set_default_logger_severity(3)
    _pybind_state.set_global_thread_pool_sizes(int(threads), 1)
    print(json.dumps({"ready": True, "pid": os.getpid(), "threads": threads, "torch": "torch" in sys.modules}),
          file=out, flush=True)
    for line in lines:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            settings = TimingSettings.from_json(req["settings"])
            if settings.threads != threads:
                raise NasPruneError(f"this worker has {threads} threads, not {settings.threads}")
            entries = req["models"]  # [name, path, seed, what]
            rounds = _in_process({e[0]: e[1] for e in entries}, settings, {e[0]: e[2] for e in entries},
                                 {e[0]: e[3] for e in entries}, shared_pool=True)
            reply: dict[str, Any] = {"ok": True, "rounds": rounds}
        except Exception as exc:  # noqa: BLE001 - any failure is reported to the caller; the worker lives on
            reply = {"ok": False, "type": type(exc).__name__, "error": str(exc) or type(exc).__name__}
        print(json.dumps(reply), file=out, flush=True)
