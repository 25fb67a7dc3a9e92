"""Assemble figures and a summary table into one self-contained HTML page."""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any, Sequence

import plotly.graph_objects as go
import plotly.io as pio

from nas_prune._io import atomic_write_text

__all__ = ["render_page"]

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;background:#f6f7f9;color:#222}
header{background:#1f2d3d;color:#fff;padding:18px 32px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#c9d3de;font-size:14px}
main{max-width:1100px;margin:0 auto;padding:16px 24px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0 20px}
.card{background:#fff;border-radius:8px;padding:12px 16px;min-width:150px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
.card .k{font-size:12px;color:#667;text-transform:uppercase;letter-spacing:.04em}.card .v{font-size:22px;font-weight:600}
.ok{color:#17a34a}.bad{color:#c0392b}
.warn{background:#fff4e5;border-left:5px solid #e67e22;border-radius:6px;padding:10px 14px;margin:10px 0;font-size:15px}
section{background:#fff;border-radius:8px;margin:16px 0;padding:8px 12px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
table{border-collapse:collapse;font-size:14px;margin:8px}td,th{padding:4px 12px;border-bottom:1px solid #eee;text-align:right}
th:first-child,td:first-child{text-align:left}
"""


def render_page(path: str | os.PathLike[str], *, title: str, subtitle: str, cards: Sequence[tuple[str, str, str]],
                table: Sequence[Sequence[Any]] | None, figures: Sequence[go.Figure],
                warnings: Sequence[str] = ()) -> Path:
    """Write the page; plotly.js is inlined once so the file opens offline. ``warnings`` head the page."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{_CSS}</style></head><body>",
             f"<header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p></header><main>",
             *(f"<div class='warn' role='alert'>&#9888; {html.escape(w)}</div>" for w in warnings),
             "<div class='cards'>"]
    for key, value, cls in cards:
        parts.append(f"<div class='card'><div class='k'>{html.escape(key)}</div><div class='v {cls}'>{html.escape(value)}</div></div>")
    parts.append("</div>")
    if table:
        head, *rows = table
        parts.append("<section><table><tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in head) + "</tr>")
        for row in rows:
            parts.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>")
        parts.append("</table></section>")
    for i, fig in enumerate(figures):
        div = pio.to_html(fig, full_html=False, include_plotlyjs=(i == 0), config={"displaylogo": False})
        parts.append(f"<section>{div}</section>")
    parts.append("</main></body></html>")
    return atomic_write_text(path, "\n".join(parts))
