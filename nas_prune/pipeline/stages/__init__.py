"""The stages of ``nas-prune run``, in order: one module each, one registry.

Adding a stage is one file here (a module defining ``STAGE``, a
:class:`~nas_prune.pipeline.Stage` over the run's :class:`~nas_prune.pipeline.RunContext`) plus
one line in :data:`STAGES`. ``run_pipeline`` runs them in this order and caches each in the run
directory; the summary's stage list and ``data_use``, the report's stage table and the docs'
diagram (:func:`diagram`) come from here.
"""

from __future__ import annotations

from nas_prune.pipeline._context import Stage
from nas_prune.pipeline.stages import (
    budget,
    calibration,
    check,
    distill,
    finalists,
    gates,
    latency,
    pruningnet,
    search,
    select,
    space,
    teacher,
)

__all__ = ["STAGES", "diagram", "get_stage", "markdown_table", "stage_names"]

#: Every stage of ``nas-prune run``, in the order it runs them (then the summary and the report).
STAGES: tuple[Stage, ...] = (
    space.STAGE,
    teacher.STAGE,
    latency.STAGE,
    calibration.STAGE,
    budget.STAGE,
    gates.STAGE,
    pruningnet.STAGE,
    search.STAGE,
    finalists.STAGE,
    select.STAGE,
    distill.STAGE,
    check.STAGE,
)


def stage_names() -> list[str]:
    """The stages' names, in order."""
    return [s.name for s in STAGES]


def get_stage(name: str) -> Stage:
    """The registered stage called ``name``.

    Raises:
        KeyError: no stage has that name (the message lists them).
    """
    for s in STAGES:
        if s.name == name:
            return s
    raise KeyError(f"no stage {name!r}: the stages are {', '.join(stage_names())}")


def diagram() -> str:
    """The stage order as one line, as the docs and the package docstring show it."""
    return " -> ".join([*stage_names(), "report"])


def markdown_table() -> str:
    """The stages as a Markdown table (name, what it does, files it writes, data it reads): ``docs/stages.md``."""
    from nas_prune.pipeline._config import RunConfig

    cfg = RunConfig()  # the default run: what a stage reads may depend on a setting (the finish's method)
    rows = ["| stage | what it does | writes | data it reads |", "|---|---|---|---|"]
    for s in STAGES:
        files = ", ".join(f"`{o}`" for o in s.outputs) or "-"
        rows.append(f"| `{s.name}` | {s.title} | {files} | {s.data_use(cfg) if s.data_use(cfg) != 'none' else '-'} |")
    return "\n".join(rows)


def _check_order() -> None:
    seen: set[str] = set()
    for s in STAGES:
        late = [n for n in s.needs if n not in seen]
        if late:
            raise RuntimeError(f"stage {s.name!r} needs {late}, which do not come before it in STAGES")
        seen.add(s.name)


_check_order()  # a stage registered before what it needs is a programming error: fail on import
