"""The model to prune: your own CNN, importable by the NNI trials as ``model:small_net``."""

from __future__ import annotations

import torch
from torch import nn


class SmallNet(nn.Module):
    """A stem, a residual block with a depthwise conv, a strided head and a classifier."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU())
        self.block = nn.Sequential(
            nn.Conv2d(32, 64, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
            nn.Conv2d(64, 64, 3, padding=1, groups=64, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
            nn.Conv2d(64, 32, 1, bias=False), nn.BatchNorm2d(32),
        )
        self.head = nn.Sequential(nn.Conv2d(32, 96, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(96), nn.ReLU())
        self.fc = nn.Linear(96, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = torch.relu(x + self.block(x))
        return self.fc(self.head(x).mean((2, 3)))


def small_net(num_classes: int = 10) -> nn.Module:
    return SmallNet(num_classes)
