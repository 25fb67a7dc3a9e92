"""``nas-prune gates``, ``prune`` and ``gates-nni`` (run in-process: the commands are thin)."""

from __future__ import annotations

import json

import pytest

from nas_prune.gates import Gates
from nas_prune.space import Architecture


from tests.conftest import run_main as cli


def test_gates_prune_and_nni(capsys, tmp_path, tiny_space, tiny_space_file, tiny_gates):
    gates_file = tmp_path / "gates.json"
    code, out, err = cli(capsys, "gates", "--space", str(tiny_space_file), "--data", "digits", "--ratios", "0.4,0.6",
                         "--seeds", "0", "--epochs", "1", "--train-subset", "64", "--batch-size", "32",
                         "-o", str(gates_file))
    assert code == 0, err
    assert [r["ratio"] for r in json.loads(out)["runs"]] == [0.4, 0.6]
    assert Gates.load(gates_file).space_id == tiny_space.id
    assert not (tmp_path / "gates.json.partial").exists()  # the checkpoint is removed once done

    tiny_gates.save(gates_file)  # better-trained gates for the rest
    code, out, err = cli(capsys, "prune", "--gates", str(gates_file), "--space", str(tiny_space_file),
                         "--budget", "flops:0.5", "-o", str(tmp_path / "arch.json"))
    assert code == 0, err
    assert json.loads(out)["flops_ratio"] <= 0.5
    assert Architecture.load(tmp_path / "arch.json") == tiny_gates.prune(tiny_space, "flops:0.5")

    code, out, err = cli(capsys, "gates-nni", "--gates", str(gates_file), "--space", str(tiny_space_file),
                         "--kind", "quniform", "-o", str(tmp_path / "nni.json"))
    assert code == 0, err
    assert json.loads((tmp_path / "nni.json").read_text()) == tiny_gates.nni_search_space(tiny_space, "quniform")


@pytest.mark.parametrize("budget, message", [("flops:0.001", "cannot be met"), ("speed:1", "unknown kind")])
def test_bad_budget_is_one_line_exit_2(capsys, tmp_path, tiny_space_file, tiny_gates, budget, message):
    tiny_gates.save(tmp_path / "g.json")
    code, _, err = cli(capsys, "prune", "--gates", str(tmp_path / "g.json"), "--space", str(tiny_space_file),
                       "--budget", budget, "-o", str(tmp_path / "a.json"))
    assert code == 2 and message in err and err.count("\n") == 1 and not (tmp_path / "a.json").exists()


def test_bad_gates_file_is_one_line_exit_2(capsys, tmp_path, tiny_space_file):
    bad = tmp_path / "gates.json"
    bad.write_text('{"format": "nas-prune/gates", "version": 1, "runs": [')
    code, _, err = cli(capsys, "prune", "--gates", str(bad), "--space", str(tiny_space_file), "--budget",
                       "flops:0.5", "-o", str(tmp_path / "a.json"))
    assert code == 2 and str(bad) in err and err.count("\n") == 1 and "Traceback" not in err


def test_bad_ratios_exit_2(capsys, tmp_path, tiny_space_file):
    code, _, err = cli(capsys, "gates", "--space", str(tiny_space_file), "--ratios", "0.3,x", "-o",
                       str(tmp_path / "g.json"))
    assert code == 2 and "--ratios" in err
