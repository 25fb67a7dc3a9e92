"""Calibration on first use: foreign tables are detected, checked, adapted (a distorted table is corrected), cached."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from nas_prune.latency import (
    LatencyTable,
    calibrated_table,
    calibration_label,
    fit_correction,
    foreign_reason,
)
from nas_prune.latency._adapt import term_groups
from nas_prune.latency._build import design_archs
from tests.conftest import run_main as _cli


def _with_model(table: LatencyTable, coef, intercept, meta=None) -> LatencyTable:
    obj = copy.deepcopy(table.to_json())
    obj["model"].update(coef=[float(c) for c in coef], intercept=float(intercept))
    if meta is not None:
        obj["meta"] = meta
    return LatencyTable.from_json(obj)


def _distort(table: LatencyTable, factors: dict[str, float], intercept_factor: float) -> LatencyTable:
    kinds = term_groups(table.structure, table.costs.terms)
    coef = [c * factors.get(k.split(":")[0], 1.0) for c, k in zip(table.model["coef"], kinds)]
    meta = {**table.meta, "calibration": {**table.meta["calibration"], "machine": "0000another0000"}}
    return _with_model(table, coef, table.model["intercept"] * intercept_factor, meta)


def test_a_table_built_here_is_this_machines_and_others_are_foreign(tiny_table):
    assert tiny_table.meta["calibration"]["kind"] == "built"
    assert foreign_reason(tiny_table) is None
    obj = tiny_table.to_json()
    cases = {
        "another machine": lambda o: o["meta"]["calibration"].update(machine="ffffffffffffffff"),
        "onnxruntime 0.0.1": lambda o: o["meta"]["calibration"].update(onnxruntime="0.0.1"),
        "provider options": lambda o: o["settings"].update(provider_options={"arena": "off"}),
        "days ago": lambda o: o["meta"]["calibration"].update(date="2020-01-01T00:00:00+00:00"),
        "no record of this machine": lambda o: o["meta"].pop("calibration"),
        "per-session thread pools": lambda o: (o["settings"].update(threads=2), o["meta"]["calibration"].pop("timing_protocol")),
    }
    for words, edit in cases.items():
        o = copy.deepcopy(obj)
        edit(o)
        reason = foreign_reason(LatencyTable.from_json(o))
        assert reason is not None and words in reason, (words, reason)
    o = copy.deepcopy(obj)
    o["settings"]["threads"] = 2  # built here with the shared-pool protocol: its own at 2 threads too
    assert foreign_reason(LatencyTable.from_json(o)) is None


def test_fit_correction_undoes_a_distortion_of_the_per_layer_costs(tiny_table, tiny_space):
    """A table whose per-kind costs are distorted on purpose is corrected from 40 networks (no noise)."""
    rng = np.random.default_rng(0)
    n_terms = len(tiny_table.model["coef"])
    truth = _with_model(tiny_table, rng.uniform(0.02, 0.2, n_terms), 0.3)
    distorted = _distort(truth, {"depthwise": 3.0, "conv1x1": 0.4, "linear": 2.0}, 1.8)
    archs = design_archs(tiny_space, 60, seed=3)
    fit_on, held_out = archs[:40], archs[40:]
    y = [truth.relative(a) for a in fit_on]
    corr = fit_correction(distorted.structure, distorted.model, fit_on, y)
    assert corr.before["median_abs_err"] > 0.1  # the distortion is visible
    assert corr.method in ("groups", "layers") and corr.cv["within_10pct"] == 1.0
    fixed = _with_model(distorted, corr.coef, corr.intercept)
    err = [abs(fixed.relative(a) / truth.relative(a) - 1) for a in held_out]
    before = [abs(distorted.relative(a) / truth.relative(a) - 1) for a in held_out]
    assert max(err) < 0.02 and np.median(before) > 0.1


def test_fit_correction_needs_networks(tiny_table, tiny_space):
    from nas_prune.errors import NasPruneError

    archs = design_archs(tiny_space, 4, seed=0)
    with pytest.raises(NasPruneError, match="at least 6"):
        fit_correction(tiny_table.structure, tiny_table.model, archs, [1.0] * 4)
    archs = design_archs(tiny_space, 8, seed=0)
    with pytest.raises(NasPruneError, match="positive"):
        fit_correction(tiny_table.structure, tiny_table.model, archs, [1.0] * 7 + [-1.0])


def test_a_distorted_foreign_table_is_detected_adapted_and_cached(tiny_table, tiny_space, tmp_path, monkeypatch):
    """Measured: the check sees the distortion, adaptation corrects it, the second use reads the cache."""
    monkeypatch.setenv("NAS_PRUNE_CACHE", str(tmp_path / "cache"))
    bad = _distort(tiny_table, {"conv1x1": 6.0, "convkxk": 6.0, "depthwise": 6.0, "linear": 6.0}, 0.2)
    path = bad.save(tmp_path / "foreign.json")
    logs: list[str] = []
    cal = calibrated_table(path, tiny_space, log=logs.append)
    rec = cal.meta["calibration"]
    assert rec["kind"] in ("adapted", "rebuilt"), rec["kind"]
    assert rec["check"]["fits"] is False and "another machine" in rec["reason"]
    assert foreign_reason(cal) is None  # now this machine's
    if rec["kind"] == "adapted":
        assert rec["adapt"]["cv"]["median_abs_err"] < 0.5 * rec["check"]["median_abs_err"]
        # the correction, scored on the check's networks against the original (undistorted) table
        recs = rec["records"][:rec["check"]["n"]]
        y = np.array([r["rel"] for r in recs])
        err_bad = np.median([abs(bad.relative(r["channels"]) / v - 1) for r, v in zip(recs, y)])
        err_cal = np.median([abs(cal.relative(r["channels"]) / v - 1) for r, v in zip(recs, y)])
        assert err_cal < 0.5 * err_bad
        assert "adapted to this machine" in calibration_label(cal)
    assert any("latency table check" in m for m in logs)
    # second use: the cached calibration, no measurement
    import nas_prune.latency._calibrate as calmod

    monkeypatch.setattr(calmod, "check_table", lambda *a, **k: pytest.fail("measured again"))
    again = calibrated_table(path, tiny_space, log=logs.append)
    assert again.predict(tiny_space.sample(1)) == pytest.approx(cal.predict(tiny_space.sample(1)))
    assert "cache" in logs[-1]


def test_a_cached_calibration_is_checked_again_once_it_is_old(tiny_table, tiny_space, tmp_path, monkeypatch):
    """The machine drifts: a calibration older than RECHECK_MINUTES is re-checked, and redone if off."""
    import datetime

    import nas_prune.latency._calibrate as calmod
    from nas_prune.latency import LatencyTable

    monkeypatch.setenv("NAS_PRUNE_CACHE", str(tmp_path / "cache"))
    bad = _distort(tiny_table, {"conv1x1": 6.0, "convkxk": 6.0, "depthwise": 6.0, "linear": 6.0}, 0.2)
    path = bad.save(tmp_path / "foreign.json")
    calibrated_table(path, tiny_space)
    (cached,) = (tmp_path / "cache").rglob("*.json")

    def age(minutes: float) -> None:
        t = LatencyTable.load(cached)
        then = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=minutes)
        t.meta["calibration"]["date"] = then.isoformat(timespec="seconds")
        t.save(cached)

    age(calmod.RECHECK_MINUTES + 5)
    checks: list[int] = []
    real = calmod.check_table

    def fits(*a, **k):
        checks.append(1)
        figs, recs = real(*a, **k)
        return {**figs, "fits": True}, recs

    monkeypatch.setattr(calmod, "check_table", fits)
    logs: list[str] = []
    calibrated_table(path, tiny_space, log=logs.append)
    assert checks == [1] and "checked again: fits" in logs[-1]
    assert calmod._minutes_since(LatencyTable.load(cached).meta["calibration"]) < 1  # the check renews it

    age(calmod.RECHECK_MINUTES + 5)
    calls: list[str] = []
    monkeypatch.setattr(calmod, "check_table", lambda *a, **k: ({"fits": False, "within_10pct": 0.2}, []))
    monkeypatch.setattr(calmod, "calibrate", lambda tab, space, reason=None, **k: calls.append(reason) or tab)
    logs.clear()
    calibrated_table(path, tiny_space, log=logs.append)
    assert calls == ["cached calibration drifted"] and any("no longer fits" in m for m in logs)


def test_a_foreign_table_without_a_space_is_used_but_marked_uncalibrated(tiny_table, tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_PRUNE_CACHE", str(tmp_path / "cache"))
    foreign = _distort(tiny_table, {}, 1.0)
    logs: list[str] = []
    t = calibrated_table(foreign, None, log=logs.append)
    assert t.meta["calibration"]["kind"] == "uncalibrated" and "NOT calibrated" in logs[0] and "adapt" in logs[0]
    off = calibrated_table(foreign, None, mode="off", log=logs.append)
    assert "calibration off" in calibration_label(off)


def test_latency_adapt_command_writes_a_table_adapted_to_this_machine(capsys, tiny_table, tiny_space, tiny_space_file,
                                                                     tmp_path):
    bad = _distort(tiny_table, {"conv1x1": 5.0, "convkxk": 5.0}, 0.3)
    src = bad.save(tmp_path / "foreign.json")
    out = tmp_path / "adapted.json"
    code, stdout, err = _cli(capsys, "latency", "adapt", "--table", str(src), "--space", str(tiny_space_file),
                             "-o", str(out), "--nets", "30")
    assert code == 0, err
    table = LatencyTable.load(out)
    assert table.meta["calibration"]["kind"] == "adapted" and foreign_reason(table) is None
    assert "adapted to this machine" in stdout and "latency table check" in err
    arch = tmp_path / "arch.json"
    tiny_space.sample(2).save(arch)
    code, stdout, err = _cli(capsys, "latency", "predict", "--table", str(out), "--arch", str(arch), "--json")
    row = json.loads(stdout)
    assert code == 0 and row["latency_ms"] > 0 and "adapted" in row["calibration"] and "adapted" in err
    code, _, err = _cli(capsys, "latency", "adapt", "--table", str(src), "--space", str(tiny_space_file),
                        "-o", str(out), "--nets", "3")
    assert code == 2 and "at least 6" in err
