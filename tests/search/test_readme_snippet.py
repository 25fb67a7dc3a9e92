"""The README's Optuna snippet runs as written (on a tiny run's files instead of runs/demo's)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_readmes_optuna_snippet_runs(tiny_artifacts, capsys):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    snippet = next(b for b in blocks if "optuna.create_study" in b)
    assert len(snippet.strip().splitlines()) <= 20
    code = (snippet.replace("runs/demo/table_calibrated.json", str(tiny_artifacts / "table.json"))
            .replace("runs/demo", str(tiny_artifacts)).replace("n_trials=40", "n_trials=8")
            .replace('"0.5x"', '"1x"'))  # the tiny space's 8-net table can be flat (16 px, ~15 us): 1x is always met
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})  # noqa: S102 (our own README)
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    arch = ast.literal_eval(printed)
    assert isinstance(arch, dict) and arch and all(isinstance(v, int) for v in arch.values())
