"""The ``nas-prune`` command line: one module per pipeline stage, each registering its commands.

Every error a user can cause (:class:`nas_prune.errors.NasPruneError`) is printed as one line and
exits with code 2; usage errors also exit with 2.
"""

from __future__ import annotations

import importlib
import sys
from typing import Sequence

import typer

from nas_prune.errors import NasPruneError

__all__ = ["app", "main"]

app = typer.Typer(
    name="nas-prune",
    help="Hardware-aware channel-pruning NAS for Optuna and NNI.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Stage modules, in pipeline order; each defines ``register(app)``.
_COMMAND_MODULES = (
    "nas_prune.cli._space",
    "nas_prune.cli._teacher",
    "nas_prune.cli._gates",
    "nas_prune.cli._pruningnet",
    "nas_prune.cli._latency",
    "nas_prune.cli._search",
    "nas_prune.cli._distill",
    "nas_prune.cli._run",
)

for _module in _COMMAND_MODULES:
    importlib.import_module(_module).register(app)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point (usage errors exit with 2 through typer itself)."""
    try:
        app(args=list(argv) if argv is not None else None, prog_name="nas-prune")
    except NasPruneError as exc:
        typer.echo(f"nas-prune: error: {exc}", err=True)
        sys.exit(exc.exit_code)
