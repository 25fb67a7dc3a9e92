"""The import contract, read from the source (no import-linter needed): layers and private modules.

1. Layers: ``cli`` and ``api`` (the one-call Python entry) > ``pipeline`` > the stages (``space``,
   ``data``, ``gates``, ...). No module outside ``nas_prune.cli`` imports it
   (``nas_prune/__main__.py``, the entry point, excepted), nothing below ``api`` imports it, and
   only ``cli``, ``api`` and ``pipeline`` import ``nas_prune.pipeline``.
2. Private modules stay private: ``nas_prune.X._y`` is imported only from inside package ``X``;
   ``nas_prune._y`` only from inside ``nas_prune``. Benchmarks and examples use the public API.

Tests are white-box and exempt. Known violations sit in ALLOWED, one line each, until their owners
clear them; an entry that no longer occurs fails the test, so the list only shrinks.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ("nas_prune", "benchmarks", "examples")

# (importing file, imported module) pairs tolerated for now. Each one names what to do about it.
ALLOWED: set[tuple[str, str]] = set()  # empty: keep it so


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports (``from a import b`` counts as ``a`` and, if it may be a module, ``a.b``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names if alias.name.startswith("_"))
    return {m for m in found if m == "nas_prune" or m.startswith("nas_prune.")}


def _owner(path: Path) -> str:
    """The package a file belongs to: ``nas_prune.distill`` for ``nas_prune/distill/_run.py``."""
    return ".".join(path.relative_to(ROOT).parts[:-1])


def _violations(path: Path) -> list[tuple[str, str, str]]:
    rel = path.relative_to(ROOT).as_posix()
    owner = _owner(path)
    inside = owner == "nas_prune" or owner.startswith("nas_prune.")
    out = []
    for mod in sorted(_imports(path)):
        parts = mod.split(".")
        # 1. layers
        if mod.startswith("nas_prune.cli") and inside and not owner.startswith("nas_prune.cli") \
                and rel != "nas_prune/__main__.py":
            out.append((rel, mod, "imports the command line from below it"))
        top = owner.startswith("nas_prune.cli") or rel == "nas_prune/api.py"
        if mod.startswith("nas_prune.pipeline") and inside and not top and not owner.startswith("nas_prune.pipeline"):
            out.append((rel, mod, "imports the pipeline from a stage"))
        if mod == "nas_prune.api" and inside and not top:
            out.append((rel, mod, "imports the one-call API from below it"))
        # 2. private modules: the first private part and the package that holds it
        for i, part in enumerate(parts[1:], start=1):
            if part.startswith("_") and not part.startswith("__"):
                home = ".".join(parts[:i])
                if not (owner == home or owner.startswith(home + ".")):
                    out.append((rel, ".".join(parts[:i + 1]), f"imports a private module of {home}"))
                break
    return out


def _files() -> list[Path]:
    return sorted(p for d in CHECKED for p in (ROOT / d).rglob("*.py"))


def test_import_contract():
    found = [v for path in _files() for v in _violations(path)]
    new = [f"{f}: {why}: {m}" for f, m, why in found if (f, m) not in ALLOWED]
    assert not new, "import contract broken (use the package's public names):\n" + "\n".join(new)


def test_allowlist_only_shrinks():
    found = {(f, m) for path in _files() for f, m, _ in _violations(path)}
    stale = sorted(ALLOWED - found)
    assert not stale, f"these ALLOWED entries no longer occur: delete them from tests/test_imports.py: {stale}"


def test_the_checker_sees_violations(tmp_path, monkeypatch):
    import tests.test_imports as me

    pkg = tmp_path / "nas_prune" / "gates"
    pkg.mkdir(parents=True)
    bad = pkg / "_x.py"
    bad.write_text("from nas_prune.cli._teacher import train\nimport nas_prune.search._nni\nfrom nas_prune.gates import _y\n"
                   "from nas_prune.gates._z import q\nfrom nas_prune import _io\nfrom nas_prune.pipeline import run_pipeline\n")
    script = tmp_path / "benchmarks" / "b.py"
    script.parent.mkdir()
    script.write_text("from nas_prune import _io\nfrom nas_prune.distill import distill\n")
    monkeypatch.setattr(me, "ROOT", tmp_path)
    assert sorted((m, why) for _, m, why in _violations(bad)) == [
        ("nas_prune.cli._teacher", "imports a private module of nas_prune.cli"),
        ("nas_prune.cli._teacher", "imports the command line from below it"),
        ("nas_prune.pipeline", "imports the pipeline from a stage"),
        ("nas_prune.search._nni", "imports a private module of nas_prune.search"),
    ]
    assert [m for _, m, _ in _violations(script)] == ["nas_prune._io"]


def _runtime_imports(path: Path) -> set[str]:
    """Modules ``path`` imports when it runs (module level and inside functions), not under ``TYPE_CHECKING``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for child in node.body for n in ast.walk(child))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_no_import_cycle_between_the_modules_of_a_package():
    """Within each package, its private modules import each other in one direction only (issue 31)."""
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts): p for p in (ROOT / "nas_prune").rglob("*.py")
               if p.name != "__init__.py"}
    graph = {m: {i for i in _runtime_imports(p) if i in modules and i.rpartition(".")[0] == m.rpartition(".")[0]}
             for m, p in modules.items()}
    cycles = []

    def visit(m: str, path: list[str]) -> None:
        for n in graph[m]:
            if n in path:
                cycles.append(" -> ".join(path[path.index(n):] + [n]))
            elif len(path) < 12:
                visit(n, path + [n])

    for m in graph:
        visit(m, [m])
    assert not cycles, "import cycles inside a package:\n" + "\n".join(sorted(set(cycles)))
