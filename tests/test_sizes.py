"""Code a newcomer can read: no module of ``nas_prune/`` over 400 lines, no function over 80 (issue 31)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "nas_prune"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80  # from its ``def`` line to its last line


def test_no_module_or_function_is_too_long_to_read():
    long_modules, long_functions = [], []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text()
        name = path.relative_to(PACKAGE.parent).as_posix()
        if len(source.splitlines()) > MAX_MODULE_LINES:
            long_modules.append(f"{name}: {len(source.splitlines())} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long_functions.append(f"{name}:{node.name}: {lines} lines")
    assert long_modules == [], f"split these modules (one concept each): {long_modules}"
    assert long_functions == [], f"split these functions into their steps: {long_functions}"
