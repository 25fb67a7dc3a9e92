"""End to end: ``nas-prune run`` on a tiny configuration, its summary and its report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from torch.utils.data import Dataset

from nas_prune.data import DataBundle
from nas_prune.distill import DistillConfig
from nas_prune.errors import NasPruneError
from nas_prune.pipeline import RunConfig

ROOT = Path(__file__).resolve().parents[2]


def test_the_run_reads_its_budget_in_the_budget_language():
    assert RunConfig(budget="0.5x").budget_spec.to_ms(10.0) == 5.0
    assert RunConfig(budget="250us").budget_spec.to_ms(10.0) == pytest.approx(0.25)
    for bad in ("fast", "1.5x", "-1ms", "0x"):
        with pytest.raises(NasPruneError):
            RunConfig(budget=bad)
    with pytest.raises(NasPruneError, match=r"no unit: write 0.5ms .* or 0.5x \(a fraction of the teacher"):
        RunConfig(budget="0.5")


def test_search_and_run_share_one_default_sampler():
    import inspect

    from nas_prune.cli._run import run
    from nas_prune.cli._search import search
    from nas_prune.search import DEFAULT_SAMPLER, run_search

    defaults = {inspect.signature(f).parameters["sampler"].default for f in (run, search)}
    assert {getattr(d, "default", d) for d in defaults} == {DEFAULT_SAMPLER} == {RunConfig().sampler}
    assert inspect.signature(run_search).parameters["sampler"].default == DEFAULT_SAMPLER == "evolution"


def test_presets_fill_unset_fields():
    cfg = RunConfig(data="fashion-mnist", n_trials=7)
    assert cfg.n_trials == 7 and cfg.train_subset == 10000
    assert cfg.batch_size == 128 and cfg.distill_batch_size is None  # the finish keeps DistillConfig's
    with pytest.raises(NasPruneError):
        RunConfig(backend="ray")
    with pytest.raises(NasPruneError, match="batch size 0"):
        RunConfig(batch_size=0)


TINY = ["--model", "tests.conftest:tiny_resnet", "--input-size", "16", "--teacher-epochs", "2", "--gate-epochs", "1",
        "--pnet-epochs", "2", "--n-trials", "10", "--distill-epochs", "1", "--profile", "--validate-n", "3",
        "--budget", "1ms"]


def html_text(out: Path) -> str:
    return (out / "report.html").read_text()


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NAS_PRUNE_PROGRESS": "0", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "nas_prune", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=1200)


@pytest.mark.slow
def test_run_tiny_end_to_end(tmp_path):
    out = tmp_path / "run"
    r = run_cli("run", *TINY, "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    for who in ("teacher", "final"):
        for key in ("accuracy", "params", "flops", "measured_latency_ms"):
            assert isinstance(summary[who][key], (int, float)), (who, key)
    assert summary["final"]["predicted_latency_ms"] > 0
    assert summary["final"]["params"] <= summary["teacher"]["params"]
    assert summary["budget_ms"] == 1.0 and summary["feasible"] is True
    assert summary["training_processes"] == {"processes": 1, "batch_size": 64, "per_process_batch": 64, "backend": None}
    # feasible follows the final measurement (ratio to the teacher, interleaved), not the table
    final_check = json.loads((out / "final_check.json").read_text())
    assert summary["feasible"] is final_check["meets"] and summary["latency_ratio"] == final_check["ratio"]
    lo, hi = summary["latency_ratio_interval"]
    assert lo <= summary["latency_ratio"] <= hi and final_check["rounds_all"] >= 30
    assert summary["latency_ratio_rounds"] == final_check["rounds"] >= 5  # the quiet blocks' rounds (>= 1 block)
    assert summary["latency_ratio_blocks"]["all"] >= 6 and summary["latency_ratio_blocks"]["quiet"] >= 1
    assert final_check["meets"] == (hi <= final_check["limit"] if final_check["decided_by"] == "interval"
                                    else final_check["ratio"] <= final_check["limit"])
    # a table profiled here is this machine's: used as built, and said so
    assert summary["calibration"]["kind"] == "built" and "built on this machine" in summary["calibration"]["label"]
    assert summary["finalists"]["n"] >= 1 and (out / "finalists.json").exists()
    assert "latency table" in html_text(out)
    assert summary["speedup"] == pytest.approx(summary["teacher"]["measured_latency_ms"] / summary["final"]["measured_latency_ms"])
    for rel in summary["artifacts"].values():
        assert (out / rel).exists(), rel
    html = (out / "report.html").read_text()
    assert "Pareto front" in html and "Channels per gene" in html and "Distillation" in html
    # every stage is cached: a re-run does no work and gives the same summary
    r2 = run_cli("run", *TINY, "--out", str(out))
    assert r2.returncode == 0, r2.stderr[-2000:]
    assert "cached" in r2.stderr and "▶" not in r2.stderr
    again = json.loads((out / "summary.json").read_text())
    assert again["final"]["channels"] == summary["final"]["channels"]
    # another configuration in the same directory is refused, nothing damaged
    r3 = run_cli("run", *TINY[:-1], "2ms", "--out", str(out))
    assert r3.returncode == 2 and "other settings" in r3.stderr
    assert json.loads((out / "summary.json").read_text()) == again
    # nas-prune check measures the finished run again with its protocol and records both verdicts
    r4 = run_cli("check", str(out))
    assert r4.returncode == 0, r4.stderr[-2000:]
    rechecked = json.loads((out / "summary.json").read_text())
    new_check = json.loads((out / "final_check.json").read_text())
    assert rechecked["latency_ratio"] == new_check["ratio"] and rechecked["feasible"] is bool(new_check["meets"])
    last = rechecked["rechecks"][-1]
    assert last["before"]["latency_ratio"] == again["latency_ratio"] and last["after"]["feasible"] is rechecked["feasible"]
    assert json.loads(r4.stdout)["before"] == last["before"]
    assert rechecked["final"]["channels"] == again["final"]["channels"]
    r5 = run_cli("check", str(tmp_path))
    assert r5.returncode == 2 and "no finished run" in r5.stderr


def test_run_refuses_a_directory_whose_config_is_not_ours(tmp_path):
    from nas_prune.pipeline import run_pipeline

    (tmp_path / "config.json").write_text("[1, 2, 3]")
    with pytest.raises(NasPruneError, match=r"config.json is not a nas-prune run configuration"):
        run_pipeline(RunConfig(out=str(tmp_path)))
    assert (tmp_path / "config.json").read_text() == "[1, 2, 3]"  # left as it was


class _NoTrainingImages(Dataset):
    """A training split that fails the run on any use."""

    def __len__(self) -> int:
        raise AssertionError("the finish asked for the size of the training split")

    def __getitem__(self, idx: int):
        raise AssertionError("the finish read a training image")


def _count_parsing(monkeypatch) -> tuple[list[str], list[str]]:
    """Spies on every parse of a budget string and every resolution of ``auto`` as a device, wherever imported."""
    import nas_prune.training as training
    from nas_prune.budget import LatencyLimit

    parsed: list[str] = []
    autos: list[str] = []
    parse, resolve = LatencyLimit.parse.__func__, training.resolve_device  # type: ignore[attr-defined]

    def counting_parse(cls, text, *args, **kwargs):
        parsed.append(str(text))
        return parse(cls, text, *args, **kwargs)

    def counting_resolve(spec="auto"):
        if spec is None or str(spec).strip().lower() == "auto":
            autos.append("auto")
        return resolve(spec)

    monkeypatch.setattr(LatencyLimit, "parse", classmethod(counting_parse))
    for name, module in list(sys.modules.items()):  # modules that imported the function by name
        if name.startswith("nas_prune") and getattr(module, "resolve_device", None) is resolve:
            monkeypatch.setattr(module, "resolve_device", counting_resolve)
    return parsed, autos


@pytest.mark.slow
def test_run_with_dafl_finishes_without_training_images(tmp_path, monkeypatch):
    """``--method dafl``: the finish (PruningNet init included) gets a training split that fails on any use."""
    import nas_prune.distill as distill_pkg
    from nas_prune.pipeline import run_pipeline

    real_distill = distill_pkg.distill
    seen: list[str] = []

    def guarded(space, arch, teacher, data, **kwargs):
        seen.append(kwargs["method"])
        kwargs["config"] = DistillConfig(dafl_batch_size=32, dafl_steps_per_epoch=3)  # tiny, fast
        data = DataBundle(data.name, _NoTrainingImages(), data.val, data.test, data.num_classes, data.input_size)
        return real_distill(space, arch, teacher, data, **kwargs)

    monkeypatch.setattr(distill_pkg, "distill", guarded)
    monkeypatch.setenv("NAS_PRUNE_PROGRESS", "0")
    parsed, autos = _count_parsing(monkeypatch)
    cfg = RunConfig(model="tests.conftest:tiny_resnet", input_size=16, teacher_epochs=2, gate_epochs=1, pnet_epochs=2,
                    n_trials=6, distill_epochs=2, profile=True, validate_n=2, budget="1ms", finalists=2,
                    method="dafl", out=tmp_path / "run", device="auto")
    summary = run_pipeline(cfg)
    # settings are parsed once, at the edge: the budget string once, "auto" resolved once (RunConfig)
    assert parsed == ["1ms"] and autos == ["auto"]
    assert seen == ["dafl"]
    assert summary["finish"] == {"method": "dafl", "init": "pnet", "data_free": True}
    assert summary["data_use"]["distill"].startswith("no training image")
    assert summary["data_use"]["teacher"].startswith("training split")  # the teacher still needs the data
    metrics = json.loads((tmp_path / "run" / "distill" / "metrics.json").read_text())
    assert metrics["method"] == "dafl" and len(metrics["history"]) == 2
    assert "data seen by distill" in html_text(tmp_path / "run")
