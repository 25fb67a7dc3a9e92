"""``nas-prune nni`` refuses bad arguments before NNI starts (and before its port warning); metric dicts."""

from __future__ import annotations

import pytest

from nas_prune.search import LatencyBudget
from nas_prune.search.nni_trial import score_candidate
from tests.conftest import run_main
from tests.search.standins import FakeEvaluator, FakeTable

WARNING = "binds its web UI port"


def test_missing_required_options_are_named_without_the_port_warning(capsys, tiny_space_file):
    code, _, err = run_main(capsys, "nni", "--space", str(tiny_space_file))
    assert code == 2 and WARNING not in err
    assert "needs --pnet, --table, --budget, -o to start an experiment" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("args, message", [
    (["--budget", "0.5"], "has no unit: write 0.5ms"),
    (["--budget", "fast"], "is not a duration"),
    (["--budget", "5ms", "--port", "70000"], "is not a TCP port"),
    (["--budget", "5ms", "--trials", "0"], "at least 1"),
    (["--budget", "5ms", "--keep", "--detach"], "choose one"),
])
def test_bad_arguments_exit_2_before_nni_starts(capsys, tmp_path, tiny_space_file, args, message):
    pnet, table = tmp_path / "pnet.pt", tmp_path / "table.json"
    code, _, err = run_main(capsys, "nni", "--space", str(tiny_space_file), "--pnet", str(pnet), "--table", str(table),
                            "-o", str(tmp_path / "best.json"), *args)
    assert code == 2 and message in err and WARNING not in err, err
    assert not (tmp_path / "best.json.nni").exists()  # nothing was prepared either


def test_search_budget_without_a_unit_is_refused_first(capsys, tmp_path):
    code, _, err = run_main(capsys, "search", "--space", str(tmp_path / "nope.json"), "--pnet", "p", "--table", "t",
                            "--budget", "0.5", "-o", str(tmp_path / "best.json"))
    assert code == 2 and "budget '0.5' has no unit: write 0.5ms" in err and "0.5x" in err


def test_help_marks_the_required_options(capsys):
    code, out, _ = run_main(capsys, "nni", "--help")
    assert code == 0 and "Required to start an experiment" in out
    required = out.split("Required to start an experiment")[1]
    for flag in ("--space", "--pnet", "--table", "--budget", "--output"):
        assert flag in required
    assert "--keep" in out


def test_metric_dict_has_a_default_key_and_no_fake_accuracy(tiny_space):
    table = FakeTable(tiny_space)
    evaluator = FakeEvaluator(tiny_space)
    budgets = LatencyBudget.for_tables([table], ["0.5x"], reference=tiny_space.full())
    fast, full = tiny_space.uniform(0.0), tiny_space.full()
    ok = score_candidate(fast, space=tiny_space, budgets=budgets, evaluate=evaluator.score)
    over = score_candidate(full, space=tiny_space, budgets=budgets, evaluate=evaluator.score)
    name = budgets[0].name
    assert ok["default"] == ok["accuracy"] and ok["feasible"] == ok["evaluated"] == 1
    assert {"default", "accuracy", "feasible", f"latency_ms:{name}", "flops", "params"} <= set(ok)
    assert "accuracy" not in over and over["feasible"] == over["evaluated"] == 0 and over["default"] < -1
    assert len(evaluator.calls) == 1  # the over-budget candidate was not evaluated
