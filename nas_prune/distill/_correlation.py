"""Correlation congruence: match the batch's sample-to-sample similarity matrices.

Peng et al., "Correlation Congruence for Knowledge Distillation", ICCV 2019, arXiv 1904.01802,
section 3.3. The Gaussian RBF kernel ``exp(-gamma * |x - y|^2)`` is approximated by its P-order
Taylor series, which for L2-normalised embeddings (``|x| = |y| = 1``) is
``sum_{p=0..P} exp(-2 gamma) (2 gamma)^p / p! * (x . y)^p``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["taylor_rbf_correlation", "CorrelationCongruence"]


def taylor_rbf_correlation(embeddings: torch.Tensor, *, gamma: float = 0.4, order: int = 2) -> torch.Tensor:
    """``[n, n]`` correlation matrix of L2-normalised ``[n, d]`` embeddings under the Taylor RBF kernel."""
    z = F.normalize(embeddings.flatten(1), dim=1)
    dots = z @ z.t()
    out = torch.zeros_like(dots)
    for p in range(order + 1):
        out = out + math.exp(-2 * gamma) * (2 * gamma) ** p / math.factorial(p) * dots.pow(p)
    return out


class CorrelationCongruence(nn.Module):
    """``L_cc = (1/n^2) sum_ij (phi(fs_i, fs_j) - phi(ft_i, ft_j))^2`` on projected embeddings.

    Student and teacher penultimate features are projected to a common ``embed_dim``: the student's
    by a learned linear layer (trained with the student, as in the paper), the teacher's by a fixed
    random Gaussian matrix scaled by ``1/sqrt(embed_dim)`` (a Johnson-Lindenstrauss projection: it
    keeps the teacher's inner products, hence its correlations, and cannot collapse them, which a
    learned teacher projection could do to zero the loss).

    Args:
        student_dim: Width of the student's penultimate features.
        teacher_dim: Width of the teacher's penultimate features.
        embed_dim: Common dimension (default 128).
        gamma: RBF kernel parameter (default 0.4, as in the paper).
        order: Taylor order ``P`` (default 2, as in the paper).
        seed: Seed of the teacher's fixed projection.
    """

    teacher_proj: torch.Tensor  # a fixed (buffer) random projection

    def __init__(self, *, student_dim: int, teacher_dim: int, embed_dim: int = 128, gamma: float = 0.4,
                 order: int = 2, seed: int = 0) -> None:
        super().__init__()
        if order < 0 or gamma <= 0 or embed_dim < 1:
            raise ValueError("need order >= 0, gamma > 0 and embed_dim >= 1")
        self.gamma = gamma
        self.order = order
        self.student_proj = nn.Linear(student_dim, embed_dim)
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("teacher_proj", torch.randn(teacher_dim, embed_dim, generator=g) / math.sqrt(embed_dim))

    def forward(self, student_features: torch.Tensor, teacher_features: torch.Tensor) -> torch.Tensor:
        fs = self.student_proj(student_features.flatten(1))
        ft = teacher_features.detach().flatten(1) @ self.teacher_proj
        cs = taylor_rbf_correlation(fs, gamma=self.gamma, order=self.order)
        ct = taylor_rbf_correlation(ft, gamma=self.gamma, order=self.order)
        return (cs - ct).pow(2).mean()
