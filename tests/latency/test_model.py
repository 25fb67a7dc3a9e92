"""Cost structure, staircase features and the additive fit (no timing)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from nas_prune.latency import LayerCosts, fit_additive, structure_from_space


def test_layer_channels_match_the_space(tiny_space):
    costs = LayerCosts(structure_from_space(tiny_space), 1)
    names = [l["name"] for l in costs.layers]
    for seed in range(10):
        arch = tiny_space.sample(seed)
        expected = tiny_space.layer_channels(arch)
        assert costs.channels_of(arch.channels) == [expected[n] for n in names]


def test_layer_channels_match_a_real_space():
    from nas_prune.space import ChannelSpace

    sp = ChannelSpace.load("search_spaces/mobilenet_v2-32.json")
    costs = LayerCosts(structure_from_space(sp), 16)
    names = [l["name"] for l in costs.layers]
    arch = sp.sample(3)
    expected = sp.layer_channels(arch)
    assert costs.channels_of(arch.channels) == [expected[n] for n in names]
    assert np.allclose(costs.features(sp.full().channels), 1.0)


def test_fast_predictor_equals_the_features(tiny_space):
    costs = LayerCosts(structure_from_space(tiny_space), 8)
    coef = np.random.default_rng(0).uniform(0, 1, len(costs.names))
    fast = costs.predictor(coef, 0.3)
    for seed in range(10):
        ch = tiny_space.sample(seed).channels
        assert fast(ch) == pytest.approx(costs.features(ch) @ coef + 0.3, rel=1e-9)


def test_staircase_is_flat_within_a_block_and_steps_across(tiny_space):
    costs = LayerCosts(structure_from_space(tiny_space), 16)
    fast = costs.predictor(np.ones(len(costs.names)), 0.0)
    gene = tiny_space.gene("block.0")  # 32 wide, choices 8..32 step 8
    by_count = {c: fast({gene.name: c}) for c in gene.choices}
    assert by_count[8] == by_count[16]  # same 16-channel block: same cost, no smooth curve
    assert by_count[24] == by_count[32]
    assert by_count[24] > by_count[16]  # the step


def test_fit_recovers_an_additive_model(tiny_space):
    structure = structure_from_space(tiny_space)
    costs = LayerCosts(structure, 16)
    rng = np.random.default_rng(1)
    true = rng.uniform(0.0, 0.2, len(costs.names))
    archs = [dict(tiny_space.sample(random.Random(s)).channels) for s in range(60)]
    y = costs.matrix(archs) @ true + 0.1
    fit = fit_additive(structure, archs, y, blocks=(1, 16), ridges=(1e-8,))
    assert fit.block == 16
    assert fit.terms == ("macs", "act")  # the layout term does not help here: the simpler model wins
    assert fit.cv["within_5pct"] == 1.0
    pred = costs.predictor(fit.coef, fit.intercept)
    assert all(abs(pred(a) - t) / t < 0.01 for a, t in zip(archs, y))


def test_misaligned_layers_cost_a_reorder_and_the_fit_finds_it(tiny_space):
    structure = structure_from_space(tiny_space)
    costs = LayerCosts(structure, 16, ("macs", "act", "misaligned"))
    gene = tiny_space.gene("block.0")  # choices 8..32: 8 and 24 miss the 16-channel block
    fast = costs.predictor(np.ones(len(costs.names)), 0.0)
    base = LayerCosts(structure, 16).predictor(np.ones(len(LayerCosts(structure, 16).names)), 0.0)
    assert base({gene.name: 8}) == base({gene.name: 16})  # the same padded block ...
    assert fast({gene.name: 8}) > fast({gene.name: 16})  # ... plus the reorder
    rng = np.random.default_rng(2)
    true = rng.uniform(0.0, 0.2, len(costs.names))
    true[2::3] = rng.uniform(0.05, 0.15, len(costs.layers))  # every layer's reorder costs 5-15 %
    archs = [dict(tiny_space.sample(random.Random(s)).channels) for s in range(80)]
    y = costs.matrix(archs) @ true + 0.1
    fit = fit_additive(structure, archs, y, blocks=(1, 16), ridges=(1e-8,))
    assert (fit.block, fit.terms) == (16, ("macs", "act", "misaligned"))
    pred = LayerCosts(structure, fit.block, fit.terms).predictor(fit.coef, fit.intercept)
    assert all(abs(pred(a) - t) / t < 0.01 for a, t in zip(archs, y))
    without = fit_additive(structure, archs, y, blocks=(1, 16), ridges=(1e-8,), term_sets=(("macs", "act"),))
    assert without.cv["median_abs_err"] > 3 * fit.cv["median_abs_err"]


def test_fit_refuses_too_few_or_bad_measurements(tiny_space):
    from nas_prune.errors import NasPruneError

    structure = structure_from_space(tiny_space)
    archs = [dict(tiny_space.sample(s).channels) for s in range(5)]
    with pytest.raises(NasPruneError, match="at least 4"):
        fit_additive(structure, archs[:2], [1.0, 0.5])
    with pytest.raises(NasPruneError, match="positive"):
        fit_additive(structure, archs, [1.0, 0.5, 0.0, 0.4, 0.3])
