from __future__ import annotations

import torch
from torch import nn

from nas_prune.distill import classifier_layer, penultimate_features


def test_penultimate_features_are_the_classifier_input(tiny_space):
    model = tiny_space.build_model()
    x = tiny_space.example_input(4)
    assert classifier_layer(model, x) is model.fc
    with penultimate_features(model, x) as features:
        logits = model(x)
        f = features()
    expected = model.pool(model.head(torch.relu(model.stem(x) + model.block(model.stem(x))))).flatten(1)
    assert f.shape == (4, 24) and torch.allclose(f, expected, atol=1e-6)
    assert torch.allclose(logits, model.fc(f), atol=1e-6)
    assert not model.fc._forward_pre_hooks  # the hook is removed


def test_conv_classifier_features_are_pooled():
    model = nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(), nn.Conv2d(6, 5, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    x = torch.randn(2, 3, 8, 8)
    with penultimate_features(model, x) as features:
        model(x)
        assert torch.allclose(features(), model[1](model[0](x)).mean((2, 3)))
