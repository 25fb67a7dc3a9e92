from __future__ import annotations

import math

import pytest
import torch

from nas_prune.distill import HintonKD, soft_kl


def _softmax(v):
    e = [math.exp(x) for x in v]
    return [x / sum(e) for x in e]


def test_hinton_kd_known_value():
    s, t, T = [1.0, 2.0, 3.0], [3.0, 2.0, 1.0], 2.0
    p_t, p_s = _softmax([x / T for x in t]), _softmax([x / T for x in s])
    kl = sum(a * (math.log(a) - math.log(b)) for a, b in zip(p_t, p_s))
    ce = -math.log(_softmax(s)[0])
    expected = 0.1 * ce + 0.9 * T * T * kl
    loss = HintonKD(temperature=T, soft_weight=0.9, hard_weight=0.1)(torch.tensor([s]), torch.tensor([t]), torch.tensor([0]))
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_t_squared_factor_and_no_labels():
    s, t = torch.randn(5, 4), torch.randn(5, 4)
    for T in (1.0, 2.0, 4.0):
        kd = HintonKD(temperature=T, soft_weight=1.0, hard_weight=0.0)
        assert kd(s, t).item() == pytest.approx(T * T * soft_kl(s, t, T).item(), rel=1e-6)
    kd = HintonKD()
    assert kd(s, t).item() == pytest.approx(0.9 * 16 * soft_kl(s, t, 4.0).item(), rel=1e-6)  # no targets: soft only
    assert kd(s, s).item() == pytest.approx(0.0, abs=1e-7)


def test_teacher_gets_no_gradient_and_bad_settings_refused():
    s, t = torch.randn(3, 4, requires_grad=True), torch.randn(3, 4, requires_grad=True)
    HintonKD()(s, t, torch.tensor([0, 1, 2])).backward()
    assert s.grad is not None and t.grad is None
    with pytest.raises(ValueError):
        HintonKD(temperature=0)
