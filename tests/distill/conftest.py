"""Fixtures of the distillation tests: a trained tiny teacher on digits at 16x16."""

from __future__ import annotations

import pytest
import torch

from nas_prune.data import DataBundle
from nas_prune.training import TrainConfig, fit




@pytest.fixture(scope="session")
def digits_small(digits16):
    """300 training and 120 validation images (the test split stays whole)."""
    return DataBundle("digits", digits16.train.subset(torch.arange(300)), digits16.val.subset(torch.arange(120)),
                      digits16.test, 10, 16)


@pytest.fixture(scope="session")
def tiny_teacher(tiny_space, digits16):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = tiny_space.build_model()
    fit(model, digits16.train, None, TrainConfig(epochs=8, batch_size=32, lr=0.05, seed=0))
    return model.eval()
