"""The DAFL generator objective: images the fixed teacher finds confident, active and class-balanced.

Chen et al., "Data-Free Learning of Student Networks", ICCV 2019, arXiv 1904.01186, eq. 2-5:
``L_G = L_oh + alpha * L_a + beta * L_ie`` with

* ``L_oh``: cross-entropy of the teacher's outputs to their own argmax (one-hot outputs, as real
  images give),
* ``L_a = -mean |f|``: minus the mean absolute penultimate feature (real images activate the
  teacher's features strongly),
* ``L_ie = -H(mean softmax)``: negative entropy of the batch-mean class distribution (minimising
  it balances the classes the generator covers).

DAFL's MNIST setting uses ``alpha = 0.1, beta = 5``; batch 512 (small batches make the batch-mean
entropy a poor estimate and training stalls).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DAFLLoss", "DAFLTerms"]


@dataclass(frozen=True)
class DAFLTerms:
    """The three terms of one batch (before weighting) and their weighted sum."""

    one_hot: torch.Tensor
    activation: torch.Tensor
    info_entropy: torch.Tensor
    total: torch.Tensor


class DAFLLoss(nn.Module):
    """Generator loss ``one_hot_weight * L_oh + activation_weight * L_a + entropy_weight * L_ie``.

    Args:
        one_hot_weight: Weight of ``L_oh`` (default 1).
        activation_weight: Weight of ``L_a`` (default 0.1).
        entropy_weight: Weight of ``L_ie`` (default 5).
    """

    def __init__(self, *, one_hot_weight: float = 1.0, activation_weight: float = 0.1, entropy_weight: float = 5.0) -> None:
        super().__init__()
        self.one_hot_weight = one_hot_weight
        self.activation_weight = activation_weight
        self.entropy_weight = entropy_weight

    def terms(self, teacher_logits: torch.Tensor, teacher_features: torch.Tensor) -> DAFLTerms:
        one_hot = F.cross_entropy(teacher_logits, teacher_logits.argmax(1).detach())
        activation = -teacher_features.abs().mean()
        mean_p = F.softmax(teacher_logits, dim=1).mean(0)
        info_entropy = (mean_p * torch.log(mean_p.clamp_min(1e-12))).sum()
        total = (self.one_hot_weight * one_hot + self.activation_weight * activation
                 + self.entropy_weight * info_entropy)
        return DAFLTerms(one_hot, activation, info_entropy, total)

    def forward(self, teacher_logits: torch.Tensor, teacher_features: torch.Tensor) -> torch.Tensor:
        return self.terms(teacher_logits, teacher_features).total
