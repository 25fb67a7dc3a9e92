"""A crash part-way through a write never leaves a file that is read as good."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from nas_prune._io import write_json
from nas_prune.errors import InvalidFileError
from nas_prune.export import load_checkpoint, save_state_dict
from tests.robustness._files import assert_one_line_error, assert_untouched, run_main, snapshot
from tests.robustness._kill import ENV, ROOT

# The process is SIGKILLed at the worst moment: the new bytes are written to disk, not yet renamed.
CRASH_IN_WRITE = """
import os, signal, sys
os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)
from nas_prune import _io
from nas_prune.export import save_state_dict
path = sys.argv[2]
if sys.argv[1] == "json":
    _io.write_json(path, {"format": "new", "values": list(range(100000))})
else:
    save_state_dict({}, path, epoch=99, history=list(range(100000)))
"""


@pytest.mark.parametrize("kind", ["json", "checkpoint"])
def test_sigkill_during_a_write_keeps_the_old_file(tmp_path, kind):
    path = tmp_path / ("state.json" if kind == "json" else "state.pt")
    if kind == "json":
        path.write_text(json.dumps({"format": "old"}))
    else:
        save_state_dict({}, path, epoch=1, history=[1])
    old = path.read_bytes()
    proc = subprocess.run([sys.executable, "-c", CRASH_IN_WRITE, kind, str(path)], env=ENV, cwd=ROOT)
    assert proc.returncode == -signal.SIGKILL
    assert path.read_bytes() == old  # readers see the old file, whole
    if kind == "checkpoint":
        assert load_checkpoint(path)["epoch"] == 1
    leftovers = [p.name for p in tmp_path.iterdir() if p != path]
    assert all(n.startswith(f".{path.name}.") and n.endswith(".tmp") for n in leftovers)  # only a hidden temp
    if kind == "json":  # the next write (a resumed run) sweeps the killed writer's temp away
        write_json(path, {"format": "again"})
    else:
        save_state_dict({}, path, epoch=2, history=[1, 2])
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_truncated_latency_partial_is_refused(capsys, tmp_path, tiny_space_file):
    out = tmp_path / "table.json"
    partial = tmp_path / "table.json.partial.json"
    partial.write_text('{"format": "nas-prune/latency-partial", "records": [{"id": "n0000", "rel": 0.5')
    before = snapshot(tmp_path)
    code, _, err = run_main(capsys, "profile", "--space", tiny_space_file, "--nets", "8", "--rounds", "2", "-o", out)
    assert_one_line_error(code, err, str(partial), "truncated")
    assert_untouched(before, tmp_path)
    assert not out.exists()


def test_truncated_device_results_are_refused(tmp_path):
    from nas_prune.latency import import_results

    results = tmp_path / "results.json"
    results.write_text('{"format": "nas-prune/latency-results", "version": 1, "records": [')
    with pytest.raises(InvalidFileError, match="truncated") as info:
        import_results(results)
    assert str(results) in str(info.value) and "\n" not in str(info.value)


def test_truncated_stage_record_only_reruns_stages(tmp_path):
    from nas_prune.pipeline._cache import StageCache

    cache = StageCache(tmp_path)
    cache.run("space", lambda: {"space_id": "a"})
    data = (tmp_path / "stages.json").read_bytes()
    (tmp_path / "stages.json").write_bytes(data[: len(data) // 2])
    ran = []
    again = StageCache(tmp_path)
    assert again.run("space", lambda: ran.append(1) or {"space_id": "b"}) == {"space_id": "b"}  # redone, not misread
    assert ran == [1] and json.loads((tmp_path / "stages.json").read_text())["space"]["result"] == {"space_id": "b"}
