"""The kernel residual: it learns what the sum over layers cannot hold, and only then is it kept."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from nas_prune.errors import InvalidFileError
from nas_prune.latency import LatencyTable, fit_additive, fit_correction
from nas_prune.latency._build import design_archs
from nas_prune.latency._residual import CLIP, KernelResidual


def _interaction(tiny_space):
    """A latency the additive model cannot hold: two genes' widths multiply (+-25 % at the corners)."""
    a, b = tiny_space.genes[0], tiny_space.genes[-1]

    def factor(arch):
        sa, sb = arch.get(a.name, a.width) / a.width, arch.get(b.name, b.width) / b.width
        return 1.0 + (sa - 0.55) * (sb - 0.55) * 1.2

    return factor


def _table(table: LatencyTable, model: dict) -> LatencyTable:
    obj = copy.deepcopy(table.to_json())
    obj["model"] = model
    return LatencyTable.from_json(obj)


def test_a_cross_layer_interaction_is_learned_by_the_residual_and_not_by_the_sum(tiny_table, tiny_space):
    factor = _interaction(tiny_space)
    archs = design_archs(tiny_space, 200, seed=4)
    fit_on, held_out = archs[:150], archs[150:]
    y = [tiny_table.relative(a) * factor(a) for a in fit_on]
    truth = np.array([tiny_table.relative(a) * factor(a) for a in held_out])
    plain = fit_correction(tiny_table.structure, tiny_table.model, fit_on, y, residual_allowed=False)
    corr = fit_correction(tiny_table.structure, tiny_table.model, fit_on, y)
    assert plain.residual is None and corr.residual is not None and corr.residual_fit["kept"]
    assert corr.cv["median_abs_err"] < 0.6 * plain.cv["median_abs_err"]
    base = {**{k: v for k, v in tiny_table.model.items() if k != "residual"}, "coef": corr.coef,
            "intercept": corr.intercept}
    with_res = _table(tiny_table, {**base, "residual": corr.residual})
    without = _table(tiny_table, base)
    err = np.abs(np.array([with_res.relative(a) for a in held_out]) / truth - 1)
    err0 = np.abs(np.array([without.relative(a) for a in held_out]) / truth - 1)
    assert np.median(err) < 0.6 * np.median(err0), (np.median(err), np.median(err0))
    # the additive part alone is still there, and the correction is bounded
    a = held_out[0]
    assert with_res.additive(a) == pytest.approx(without.relative(a))
    assert abs(math.log(with_res.relative(a) / with_res.additive(a))) <= CLIP + 1e-9


def test_no_residual_when_the_sum_already_fits(tiny_table, tiny_space):
    rng = np.random.default_rng(1)
    archs = design_archs(tiny_space, 120, seed=2)
    # the table's additive part: relative() would include a residual if the profiled fixture table had one
    y = [tiny_table.additive(a) * (1 + rng.normal(0, 0.005)) for a in archs]
    assert fit_correction(tiny_table.structure, tiny_table.model, archs, y).residual is None
    fit = fit_additive(tiny_table.structure, archs, y, blocks=(1,), ridges=(1e-3,))
    assert fit.residual is None and "residual" not in fit.to_json()
    few = fit_correction(tiny_table.structure, tiny_table.model, archs[:20], y[:20])
    assert few.residual is None and "networks" in few.residual_fit["why"]


def test_a_table_with_a_residual_round_trips_and_a_broken_one_is_refused(tiny_table, tiny_space, tmp_path):
    factor = _interaction(tiny_space)
    archs = design_archs(tiny_space, 150, seed=6)
    fit = fit_additive(tiny_table.structure, archs, [tiny_table.relative(a) * factor(a) for a in archs],
                       blocks=(1,), ridges=(1e-3,))
    assert fit.residual is not None
    table = _table(tiny_table, fit.to_json())
    table.save(tmp_path / "t.json")
    again = LatencyTable.load(tmp_path / "t.json")
    for a in archs[:5]:
        assert again.relative(a) == pytest.approx(table.relative(a), rel=1e-5)
        assert again.relative(a) != pytest.approx(again.additive(a), rel=1e-6)
    obj = table.to_json()
    for edit in (lambda r: r.update(kind="mlp"), lambda r: r["centers"].pop(), lambda r: r.update(gamma=-1),
                 lambda r: r["genes"].update(nope=3), lambda r: r["centers"][0].append(0.5)):
        o = copy.deepcopy(obj)
        edit(o["model"]["residual"])
        with pytest.raises(InvalidFileError, match="residual"):
            LatencyTable.from_json(o)


def test_far_from_every_measured_network_the_residual_vanishes():
    res = KernelResidual({"g": 10}, gamma=3.0, centers=np.array([[0.5, 0.0]]), weights=np.array([0.1]))
    assert res.factor({"g": 5}, 1.0) == pytest.approx(math.exp(0.1))
    assert res.factor({"g": 5}, math.exp(6.0)) == pytest.approx(1.0, abs=1e-9)
    big = KernelResidual({"g": 10}, gamma=3.0, centers=np.array([[0.5, 0.0]]), weights=np.array([5.0]))
    assert big.factor({"g": 5}, 1.0) == pytest.approx(math.exp(CLIP))


def test_the_calibration_label_says_when_a_residual_is_used(tiny_table):
    from nas_prune.latency import calibration_label

    obj = copy.deepcopy(tiny_table.to_json())
    obj["meta"]["calibration"] = {"kind": "adapted", "date": "2026-12-02", "check": {"within_10pct": 0.1},
                                  "adapt": {"method": "layers", "nets": 300, "cv": {"within_10pct": 1.0},
                                            "residual": {"kept": True}}}
    assert "layers + kernel residual, 300 networks" in calibration_label(LatencyTable.from_json(obj))
    obj["meta"]["calibration"]["adapt"]["residual"] = {"kept": False}
    assert "kernel residual" not in calibration_label(LatencyTable.from_json(obj))
