"""Hinton knowledge distillation: the student matches the teacher's softened class probabilities.

Hinton, Vinyals and Dean, "Distilling the Knowledge in a Neural Network", NIPS 2014 workshop,
arXiv 1503.02531.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["HintonKD", "soft_kl"]


def soft_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``KL(softmax(t/T) || softmax(s/T))`` averaged over the batch (no ``T^2`` factor)."""
    log_p_s = F.log_softmax(student_logits / temperature, dim=1)
    log_p_t = F.log_softmax(teacher_logits / temperature, dim=1)
    return F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True)


class HintonKD(nn.Module):
    """``L = hard_weight * CE(y, s) + soft_weight * T^2 * KL(softmax(t/T) || softmax(s/T))``.

    The ``T^2`` factor keeps the soft term's gradients on the scale of the hard term's when the
    temperature changes (Hinton et al., section 2). Libraries disagree on what a single "alpha"
    weights, so both weights are named.

    Args:
        temperature: Softening temperature ``T`` (default 4).
        soft_weight: Weight of the soft (teacher) term (default 0.9).
        hard_weight: Weight of the cross-entropy on the labels (default 0.1); ignored when the
            batch has no labels (data-free distillation).
    """

    def __init__(self, *, temperature: float = 4.0, soft_weight: float = 0.9, hard_weight: float = 0.1) -> None:
        super().__init__()
        if temperature <= 0 or soft_weight < 0 or hard_weight < 0:
            raise ValueError("temperature must be > 0 and the weights >= 0")
        self.temperature = temperature
        self.soft_weight = soft_weight
        self.hard_weight = hard_weight

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                targets: torch.Tensor | None = None) -> torch.Tensor:
        """Loss of one batch; ``targets=None`` drops the hard term."""
        t = self.temperature
        loss = self.soft_weight * t * t * soft_kl(student_logits, teacher_logits.detach(), t)
        if targets is not None and self.hard_weight > 0:
            loss = loss + self.hard_weight * F.cross_entropy(student_logits, targets)
        return loss

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, soft_weight={self.soft_weight}, hard_weight={self.hard_weight}"
