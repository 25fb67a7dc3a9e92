"""The run report: plotly figures a person would rather look at than read, in one HTML file."""

from __future__ import annotations

from nas_prune.report._build import write_report
from nas_prune.report._figures import (
    distill_figure,
    gates_figure,
    latency_check_figure,
    pareto_figure,
    pareto_front,
    widths_figure,
)
from nas_prune.report._html import render_page
from nas_prune.report._screenshot import find_chromium, screenshot

__all__ = [
    "distill_figure",
    "find_chromium",
    "gates_figure",
    "latency_check_figure",
    "pareto_figure",
    "pareto_front",
    "render_page",
    "screenshot",
    "widths_figure",
    "write_report",
]
