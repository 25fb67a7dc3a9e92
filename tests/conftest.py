"""Shared fixtures: tiny models and spaces, and quiet progress bars."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

os.environ.setdefault("NAS_PRUNE_PROGRESS", "0")
# One intra-op thread: on a shared 2-core machine a second thread made tiny models 20-40x slower.
torch.set_num_threads(1)


class TinyResNet(nn.Module):
    """A residual block, a depthwise conv and a classifier: every kind of coupling, in 4 layers."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.block = nn.Sequential(
            nn.Conv2d(16, 32, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1, groups=32, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 16, 1, bias=False), nn.BatchNorm2d(16),
        )
        self.head = nn.Sequential(nn.Conv2d(16, 24, 1, bias=False), nn.BatchNorm2d(24), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(24, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = torch.relu(x + self.block(x))
        return self.fc(self.pool(self.head(x)).flatten(1))


def tiny_resnet(num_classes: int = 10) -> nn.Module:
    return TinyResNet(num_classes)


@pytest.fixture(scope="session")
def tiny_space():
    from nas_prune.space import ChannelSpace

    return ChannelSpace.from_name("tests.conftest:tiny_resnet", input_size=16, num_classes=10)


@pytest.fixture(scope="session")
def tiny_space_file(tiny_space, tmp_path_factory):
    path = tmp_path_factory.mktemp("space") / "space.json"
    tiny_space.save(path)
    return path


@pytest.fixture(scope="session")
def digits16():
    """The digits data at 16x16 (shared, read-only)."""
    from nas_prune.data import load_data

    return load_data("digits", input_size=16)


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    """Run the CLI in-process; return (exit code, stdout, stderr)."""
    from nas_prune.cli import main

    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err
