"""Rich progress bars that stay quiet when output is not a terminal (CI, tests, pipes)."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator, Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

__all__ = ["Advance", "progress_bar", "console", "enabled"]

console = Console(stderr=True)


class Advance(Protocol):
    """What :func:`progress_bar` yields: ``advance()`` or ``advance(n)`` moves the bar on."""

    def __call__(self, n: int = 1) -> None: ...


def enabled() -> bool:
    """Progress bars show on an interactive terminal unless NAS_PRUNE_PROGRESS=0."""
    flag = os.environ.get("NAS_PRUNE_PROGRESS")
    if flag is not None:
        return flag not in ("0", "false", "no")
    return sys.stderr.isatty()


@contextlib.contextmanager
def progress_bar(label: str, *, total: int | None) -> Iterator[Advance]:
    """Context manager yielding ``advance(n=1)``; draws a rich bar on a terminal, nothing otherwise."""
    if not enabled():
        def quiet(n: int = 1) -> None:
            return None

        yield quiet
        return
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(label, total=total)

        def advance(n: int = 1) -> None:
            bar.advance(task, n)

        yield advance
