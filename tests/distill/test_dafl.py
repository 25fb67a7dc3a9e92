from __future__ import annotations

import math

import pytest
import torch

from nas_prune.distill import DAFLGenerator, DAFLLoss


def test_dafl_terms_known_values():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 2.0]])
    feats = torch.tensor([[1.0, -3.0], [0.5, -0.5]])
    terms = DAFLLoss(one_hot_weight=1.0, activation_weight=0.1, entropy_weight=5.0).terms(logits, feats)
    p_top = math.exp(2) / (math.exp(2) + 2)
    p_low = 1 / (math.exp(2) + 2)
    assert terms.one_hot.item() == pytest.approx(-math.log(p_top), rel=1e-6)
    assert terms.activation.item() == pytest.approx(-(1 + 3 + 0.5 + 0.5) / 4, rel=1e-6)
    mean_p = [(p_top + p_low) / 2, p_low, (p_low + p_top) / 2]
    neg_entropy = sum(p * math.log(p) for p in mean_p)
    assert terms.info_entropy.item() == pytest.approx(neg_entropy, rel=1e-6)
    expected = -math.log(p_top) + 0.1 * (-(5 / 4)) + 5 * neg_entropy
    assert terms.total.item() == pytest.approx(expected, rel=1e-6)


def test_entropy_term_prefers_balanced_classes():
    loss = DAFLLoss()
    feats = torch.zeros(2, 1)
    balanced = loss.terms(torch.tensor([[5.0, 0.0], [0.0, 5.0]]), feats).info_entropy
    collapsed = loss.terms(torch.tensor([[5.0, 0.0], [5.0, 0.0]]), feats).info_entropy
    assert balanced.item() == pytest.approx(-math.log(2), rel=1e-6) and collapsed > balanced


def test_generator_shape_and_standardised_output():
    g = DAFLGenerator(image_shape=(3, 18, 18), latent_dim=8, width=16).train()
    x = g.sample(32, generator=torch.Generator().manual_seed(0))
    assert x.shape == (32, 3, 18, 18)
    assert x.mean().abs().item() < 0.1 and abs(x.std().item() - 1) < 0.1
