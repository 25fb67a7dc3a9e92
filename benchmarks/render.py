"""Rebuild the benchmark figures (HTML) from the committed JSON results; the HTML is not committed.

Every ``benchmarks/results/*.json`` whose format has a figure gets ``<same name>.html`` beside it
(plotly inlined, viewable offline). ``make figures`` runs this.

Usage: ``python benchmarks/render.py [RESULT.json ...]`` (default: every result in benchmarks/results/).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Callable

HERE = Path(__file__).resolve().parent


def _script(name: str) -> ModuleType:
    """A benchmark script of this folder, imported by path (no ``sys.path`` edit here)."""
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as an import would: dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _compare_methods(result: dict, path: Path) -> None:
    _script("compare_methods").figure(result["rows"], path)


def _pruningnet_fidelity(result: dict, path: Path) -> None:
    _script("pruningnet_fidelity").figure(result, path)


# result format -> writer of its figure
RENDERERS: dict[str, Callable[[dict, Path], None]] = {
    "nas-prune/compare-methods": _compare_methods,
    "nas-prune/pruningnet-fidelity": _pruningnet_fidelity,
}


def render(paths: list[Path]) -> list[Path]:
    written = []
    for path in paths:
        result = json.loads(path.read_text())
        writer = RENDERERS.get(result.get("format")) if isinstance(result, dict) else None
        if writer is None:
            continue
        out = path.with_suffix(".html")
        writer(result, out)
        written.append(out)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="*", type=Path, help="result JSON files (default: benchmarks/results/*.json)")
    args = ap.parse_args(argv)
    for out in render(args.results or sorted((HERE / "results").glob("*.json"))):
        print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
