from __future__ import annotations

import math

import pytest
import torch

from nas_prune.distill import CorrelationCongruence, taylor_rbf_correlation


def test_taylor_kernel_known_values():
    g = 0.4
    c = taylor_rbf_correlation(torch.tensor([[3.0, 0.0], [0.0, 0.5]]), gamma=g, order=2)  # normalised: e1, e2
    same = math.exp(-2 * g) * (1 + 2 * g + (2 * g) ** 2 / 2)
    orth = math.exp(-2 * g)  # only the p = 0 term survives x.y = 0
    assert c.flatten().tolist() == pytest.approx([same, orth, orth, same], rel=1e-6)


def test_taylor_series_converges_to_rbf():
    x = torch.nn.functional.normalize(torch.randn(6, 5), dim=1)
    exact = torch.exp(-0.4 * torch.cdist(x, x).pow(2))
    assert torch.allclose(taylor_rbf_correlation(x, gamma=0.4, order=12), exact, atol=1e-5)
    assert not torch.allclose(taylor_rbf_correlation(x, gamma=0.4, order=0), exact, atol=1e-2)


def test_congruence_value_and_zero_when_embeddings_agree():
    torch.manual_seed(0)
    cc = CorrelationCongruence(student_dim=4, teacher_dim=4, embed_dim=3)
    ft, fs = torch.randn(5, 4), torch.randn(5, 4)
    with torch.no_grad():
        cc.student_proj.weight.copy_(cc.teacher_proj.t())
        cc.student_proj.bias.zero_()
    assert cc(ft, ft).item() == pytest.approx(0.0, abs=1e-10)
    cs = taylor_rbf_correlation(cc.student_proj(fs)).detach()
    ct = taylor_rbf_correlation(ft @ cc.teacher_proj)
    expected = sum((cs[i, j] - ct[i, j]).item() ** 2 for i in range(5) for j in range(5)) / 25
    assert cc(fs, ft).item() == pytest.approx(expected, rel=1e-5)


def test_only_the_student_projection_learns():
    cc = CorrelationCongruence(student_dim=8, teacher_dim=16, embed_dim=4)
    names = {n for n, _ in cc.named_parameters()}
    assert names == {"student_proj.weight", "student_proj.bias"} and "teacher_proj" in dict(cc.named_buffers())
