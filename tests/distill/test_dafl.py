from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from nas_prune.distill import BNStatisticsLoss, DAFLGenerator, DAFLLoss, DistillConfig


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


def test_generator_has_batchnorm_and_standardising_output_layer():
    g = DAFLGenerator(image_shape=(1, 16, 16), latent_dim=8, width=16)
    norms = [m for m in g.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == 4  # after the linear layer, after each conv block, and on the image
    assert list(g.modules())[-1] is norms[-1] and not norms[-1].affine


def test_loss_weights_default_to_the_paper():
    cfg, loss = DistillConfig(), DAFLLoss()
    assert (cfg.one_hot_weight, cfg.activation_weight, cfg.entropy_weight) == (1.0, 0.1, 5.0)
    assert (loss.one_hot_weight, loss.activation_weight, loss.entropy_weight) == (1.0, 0.1, 5.0)
    assert cfg.dafl_batch_size >= 256  # the entropy term is a batch estimate: DAFL's batch 64 stalls


def test_bn_statistics_loss_is_small_on_real_images_and_decreases_when_optimised(tiny_teacher, digits16):
    teacher = tiny_teacher.eval()
    real = digits16.train.transform(digits16.train.images[:128])
    with BNStatisticsLoss(teacher) as bn:
        teacher(real)
        on_real = bn.pop().item()
        teacher(torch.randn_like(real) * 3)
        on_noise = bn.pop().item()
    assert on_real < on_noise / 3, (on_real, on_noise)

    torch.manual_seed(0)
    gen = DAFLGenerator(image_shape=tuple(real.shape[1:]), latent_dim=8, width=8)
    opt = torch.optim.Adam(gen.parameters(), lr=0.05)
    z = torch.randn(64, 8)
    losses = []
    with BNStatisticsLoss(teacher) as bn:
        for _ in range(30):
            teacher(gen(z))
            loss = bn.pop()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses
    assert not any(m._forward_hooks for m in teacher.modules())  # removed on exit
    teacher.zero_grad(set_to_none=True)


def test_bn_statistics_loss_needs_batchnorm():
    with pytest.raises(ValueError, match="no BatchNorm"):
        BNStatisticsLoss(nn.Sequential(nn.Conv2d(1, 2, 3)))
