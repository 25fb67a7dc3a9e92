"""Rich progress bars that stay quiet when output is not a terminal (CI, tests, pipes)."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

__all__ = ["progress_bar", "console", "enabled"]

console = Console(stderr=True)


def enabled() -> bool:
    """Progress bars show on an interactive terminal unless NAS_PRUNE_PROGRESS=0."""
    flag = os.environ.get("NAS_PRUNE_PROGRESS")
    if flag is not None:
        return flag not in ("0", "false", "no")
    return sys.stderr.isatty()


@contextlib.contextmanager
def progress_bar(label: str, *, total: int | None) -> Iterator[Callable[[int], None]]:
    """Context manager yielding ``advance(n=1)``; draws a rich bar on a terminal, nothing otherwise."""
    if not enabled():
        yield lambda n=1: None
        return
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n=1: bar.advance(task, n)
