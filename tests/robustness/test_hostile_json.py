"""Damaged, hostile or mismatched JSON inputs, through the CLI: one line naming the file, exit 2, nothing damaged.

Each case copies the good artefacts into a fresh folder, damages one file, puts a pre-existing
output in place, runs a command that reads the damaged file and checks every file is as it was.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

import pytest

from tests.robustness._files import assert_one_line_error, assert_untouched, run_main, snapshot


def _truncate(p: Path) -> None:
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


def _edit(fn: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(p: Path) -> None:
        doc = json.loads(p.read_text())
        fn(doc)
        p.write_text(json.dumps(doc))  # json.dumps writes NaN / Infinity tokens, as a careless tool would
    return apply


def _set_rel(value: float) -> Callable[[dict], None]:
    return lambda t: t["entries"][0].__setitem__("rel", value)


def _replace_with(name: str) -> Callable[[Path], None]:
    return lambda p: shutil.copyfile(p.parent / name, p)


# (file damaged, damage, command reading it, words the error must contain besides the path)
PRUNE_LAT = ["prune", "--gates", "gates.json", "--space", "space.json", "--budget", "latency:table.json:1ms",
             "-o", "out.json"]
PRUNE = ["prune", "--gates", "gates.json", "--space", "space.json", "--budget", "flops:0.5", "-o", "out.json"]
INFO = ["arch", "info", "--space", "space.json", "--arch", "arch.json"]
PREDICT = ["latency", "predict", "--table", "table.json", "--arch", "arch.json"]
CASES = {
    "space-truncated": ("space.json", _truncate, PRUNE, ()),
    "space-binary": ("space.json", lambda p: p.write_bytes(b"\x00\xff\xfe garbage"), PRUNE, ()),
    "space-another-model": ("space.json", _replace_with("other-space.json"), PRUNE, ()),
    "arch-truncated": ("arch.json", _truncate, INFO, ()),
    "arch-zero-channels": ("arch.json", _edit(lambda a: a["channels"].__setitem__("block.0", 0)), INFO, ("block.0",)),
    "arch-too-many-channels": ("arch.json", _edit(lambda a: a["channels"].__setitem__("block.0", 33)), INFO,
                               ("block.0",)),
    "arch-negative": ("arch.json", _edit(lambda a: a["channels"].__setitem__("stem.0", -8)), INFO, ("stem.0",)),
    "arch-nan": ("arch.json", _edit(lambda a: a["channels"].__setitem__("stem.0", float("nan"))), INFO, ()),
    "arch-another-model": ("arch.json", _replace_with("other-arch.json"), INFO, ()),
    "arch-zero-predict": ("arch.json", _edit(lambda a: a["channels"].__setitem__("block.0", 0)), PREDICT, ()),
    "table-truncated": ("table.json", _truncate, PRUNE_LAT, ()),
    "table-nan": ("table.json", _edit(_set_rel(float("nan"))), PRUNE_LAT, ()),
    "table-inf": ("table.json", _edit(_set_rel(float("inf"))), PRUNE_LAT, ()),
    "table-coef-nan": ("table.json", _edit(lambda t: t["model"].__setitem__("intercept", float("nan"))), PREDICT, ()),
    "table-another-model": ("table.json", _replace_with("other-table.json"), PRUNE_LAT, ()),
    "table-another-model-predict": ("table.json", _replace_with("other-table.json"), PREDICT, ()),
    "gates-truncated": ("gates.json", _truncate, PRUNE, ()),
    "gates-nan": ("gates.json", lambda p: p.write_text(p.read_text().replace('"gamma": 0.5', '"gamma": NaN', 1)),
                  PRUNE, ()),
    "gates-a-table": ("gates.json", _replace_with("table.json"), PRUNE, ()),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_damaged_json_is_refused(capsys, tmp_path, monkeypatch, robust_artifacts, case):
    victim, damage, command, words = CASES[case]
    for f in robust_artifacts.iterdir():
        shutil.copyfile(f, tmp_path / f.name)
    damage(tmp_path / victim)
    (tmp_path / "out.json").write_text('{"precious": "a result from an earlier run"}')
    before = snapshot(tmp_path)
    monkeypatch.chdir(tmp_path)
    code, _, err = run_main(capsys, *command)
    assert_one_line_error(code, err, *words)
    assert victim in err or ("table" in victim and "table" in err), err  # names the file it refused
    assert_untouched(before, tmp_path)
