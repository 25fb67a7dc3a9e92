"""Fixtures of the distillation tests: a trained tiny teacher on digits at 16x16."""

from __future__ import annotations

import pytest
import torch

from nas_prune.data import load_data
from nas_prune.training import TrainConfig, fit


@pytest.fixture(scope="session")
def digits16():
    return load_data("digits", input_size=16)


@pytest.fixture(scope="session")
def tiny_teacher(tiny_space, digits16):
    torch.manual_seed(0)
    model = tiny_space.build_model()
    fit(model, digits16.train, None, TrainConfig(epochs=12, batch_size=32, lr=0.05, seed=0))
    return model.eval()
