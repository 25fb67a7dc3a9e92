"""A time limit on tracing a model's channel dependencies (some graphs take minutes to trace)."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

from nas_prune.errors import UnsupportedModelError

__all__ = ["TRACE_SECONDS", "trace_time_limit"]

#: Longest a model's dependency graph may take to trace (resnet50 at 224 px: about 10 s here).
TRACE_SECONDS = 180


@contextlib.contextmanager
def trace_time_limit(seconds: float | None, model: str) -> Iterator[None]:
    """Raise :class:`UnsupportedModelError` naming ``model`` when the block runs over ``seconds``.

    Uses ``SIGALRM``, so it only limits the main thread of a Unix process (elsewhere: no limit).
    """
    usable = seconds and hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def on_alarm(signum: int, frame: object) -> None:
        raise UnsupportedModelError(
            f"model {model}: tracing its channel dependencies took over {seconds:g} s, so nas-prune cannot derive "
            "its search space in reasonable time: use another model (nas-prune models lists the tested ones)")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))  # type: ignore[arg-type]
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
