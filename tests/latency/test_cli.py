"""The profile / latency commands: build, SIGKILL + resume, predict, measure, validate JSON, bundles."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parents[2]


from tests.conftest import run_main as _cli


@pytest.mark.slow
def test_profile_resumes_after_sigkill(tiny_space_file, tmp_path):
    table = tmp_path / "table.json"
    partial = Path(str(table) + ".partial.json")
    cmd = [sys.executable, "-m", "nas_prune", "profile", "--space", str(tiny_space_file), "--nets", "24",
           "--rounds", "4", "--runs-per-round", "10", "-o", str(table)]
    env = dict(os.environ, NAS_PRUNE_PROGRESS="0")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 90
    while not partial.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert partial.exists() and not table.exists(), "killed before the first group was saved"
    done_before = json.loads(partial.read_text())["records"]
    assert 0 < len(done_before) < 24
    rerun = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert rerun.returncode == 0, rerun.stderr
    saved = json.loads(table.read_text())
    assert not partial.exists() and len(saved["entries"]) == 24 and saved["meta"]["resumed"] is True
    kept = {e["id"]: e["rel"] for e in saved["entries"]}
    assert all(kept[r["id"]] == r["rel"] for r in done_before)  # nothing measured before the kill was lost
    # a partial file from other options is a clear error, not a silent mix
    partial.write_text(json.dumps({"format": "nas-prune/latency-partial", "space": "x", "records": []}))
    clash = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert clash.returncode == 2 and "other options" in clash.stderr


def test_predict_prints_ms_and_json(capsys, tiny_table_file, tiny_space, tmp_path):
    arch = tmp_path / "arch.json"
    tiny_space.sample(2).save(arch)
    code, out, _ = _cli(capsys, "latency", "predict", "--table", str(tiny_table_file), "--arch", str(arch))
    assert code == 0 and float(out) > 0
    code, out, _ = _cli(capsys, "latency", "predict", "--table", str(tiny_table_file), "--table", str(tiny_table_file),
                        "--arch", str(arch), "--json")
    rows = json.loads(out)
    assert code == 0 and len(rows) == 2 and rows[0]["latency_ms"] == pytest.approx(float(rows[1]["latency_ms"]))


def test_predict_with_a_table_of_another_space(capsys, tiny_table_file, tmp_path):
    arch = tmp_path / "arch.json"
    arch.write_text(json.dumps({"space": "resnet18-32px-10c-6a23d0444f", "channels": {"conv1": 32}}))
    code, _, err = _cli(capsys, "latency", "predict", "--table", str(tiny_table_file), "--arch", str(arch))
    assert code == 2 and "latency table is for" in err and len(err.strip().splitlines()) == 1


def test_measure_prints_median_and_spread(capsys, tiny_space_file):
    code, out, _ = _cli(capsys, "latency", "measure", "--space", str(tiny_space_file), "--repeats", "20")
    stats = json.loads(out)
    assert code == 0 and stats["median_ms"] > 0 and stats["iqr_ms"] >= 0 and stats["p10_ms"] > 0


def test_validate_json(capsys, tiny_table_file, tiny_space_file):
    code, out, _ = _cli(capsys, "latency", "validate", "--table", str(tiny_table_file), "--space", str(tiny_space_file),
                        "--n", "4", "--seed", "1", "--rounds", "3", "--json")
    res = json.loads(out)
    assert code == 0
    for key in ("n", "within_5pct", "within_10pct", "median_abs_err", "spearman", "predict_us"):
        assert key in res, key
    assert res["n"] == 4 and 0 <= res["within_10pct"] <= 1 and res["predict_us"] > 0
    # honest figures: bootstrap intervals around each figure, the load during the measurement, which machines
    lo, hi = res["intervals"]["within_10pct"]
    assert lo <= res["within_10pct"] <= hi and set(res["intervals"]) >= {"within_5pct", "median_abs_err", "spearman"}
    assert len(res["load_average_during"]) == 1 and res["load_1min_max"] >= 0
    assert res["calibration"] == "built" and res["validated_on"]["machine_key"] and res["built_on"]["device"]
    code, out, _ = _cli(capsys, "latency", "validate", "--table", str(tiny_table_file), "--space", str(tiny_space_file),
                        "--n", "4", "--seed", "1", "--rounds", "3")
    assert code == 0 and "95% bootstrap intervals" in out and "load average during the measurement" in out


def test_validate_refuses_another_space(capsys, tiny_table_file):
    code, _, err = _cli(capsys, "latency", "validate", "--table", str(tiny_table_file), "--space",
                        "search_spaces/resnet18-32.json", "--n", "4")
    assert code == 2 and "latency table is for space" in err


def test_profile_needs_space_and_output(capsys):
    code, _, err = _cli(capsys, "profile")
    assert code == 2 and "--space" in err


def test_bundle_and_import_commands(capsys, tiny_space_file, tmp_path):
    bundle = tmp_path / "bundle.zip"
    code, out, _ = _cli(capsys, "profile", "bundle", "--space", str(tiny_space_file), "--nets", "8", "--rounds", "3",
                        "-o", str(bundle))
    assert code == 0 and bundle.is_file()
    from nas_prune.on_device import run_bundle

    run_bundle(bundle, tmp_path / "results.json", threads=1)
    code, out, err = _cli(capsys, "profile", "import", str(tmp_path / "results.json"), "--space", str(tiny_space_file),
                          "-o", str(tmp_path / "t.json"))
    assert code == 0, err
    assert json.loads((tmp_path / "t.json").read_text())["format"] == "nas-prune/latency-table"
    code, _, err = _cli(capsys, "profile", "import", str(tmp_path / "results.json"), "--space",
                        "search_spaces/resnet18-32.json", "-o", str(tmp_path / "u.json"))
    assert code == 2 and "not 'resnet18" in err


def test_refit_rebuilds_the_model_from_the_tables_own_networks(capsys, tmp_path):
    from nas_prune.latency import LatencyTable

    shipped = REPO / "latency_tables" / "devvm-intel-xeon-2vcpu" / "mobilenet_v2-224_intel-xeon-avx512_cpu-1thread.json"
    old = json.loads(shipped.read_text())
    old["model"] = {**old["model"]["refit"]["before"], "coef": old["model"]["coef"][: 2 * len(old["structure"]["layers"])],
                    "intercept": old["model"]["intercept"]}  # as fitted before the misaligned term existed
    old["model"]["terms"] = ["macs", "act"]
    src = tmp_path / "old.json"
    src.write_text(json.dumps(old))
    code, out, _ = _cli(capsys, "latency", "refit", "--table", str(src), "-o", str(tmp_path / "new.json"))
    assert code == 0 and "was block 16, terms macs+act" in out and "now block 16, terms macs+act+misaligned" in out
    new = LatencyTable.load(tmp_path / "new.json")
    assert new.entries == LatencyTable.load(src).entries and new.model["refit"]["before"]["terms"] == ["macs", "act"]
    assert new.model["cv"]["median_abs_err"] < 0.8 * new.model["refit"]["before"]["cv"]["median_abs_err"]
    # an adapted table's model no longer fits its entries: refused with the way out
    adapted = json.loads((tmp_path / "new.json").read_text())
    adapted["meta"]["calibration"] = {**adapted["meta"].get("calibration", {}), "kind": "adapted"}
    (tmp_path / "adapted.json").write_text(json.dumps(adapted))
    code, _, err = _cli(capsys, "latency", "refit", "--table", str(tmp_path / "adapted.json"))
    assert code == 2 and "adapt" in err and "Traceback" not in err


def test_rescore_scores_another_table_on_the_same_measurements(tiny_table, tiny_space):
    from nas_prune.latency import rescore

    archs = [tiny_space.sample(s) for s in range(8)]
    nets = [{"channels": dict(a.channels), "measured_ms": tiny_table.predict(a) * (1.2 if i % 2 else 1.0),
             "reference_ms": tiny_table.reference_ms} for i, a in enumerate(archs)]
    res = rescore(tiny_table, nets)
    assert res["n"] == 8 and res["within_10pct"] == 0.5 and res["median_abs_err"] == pytest.approx(1 / 12, rel=0.5)
