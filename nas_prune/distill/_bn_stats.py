"""DeepInversion's feature-distribution prior: generated images must give the teacher's BatchNorm statistics.

Yin et al., "Dreaming to Distill: Data-free Knowledge Transfer via DeepInversion", CVPR 2020,
arXiv 1912.08795, eq. 4: ``R_feature(x) = sum_l ||mu_l(x) - E[mu_l | X]||_2 + ||var_l(x) - E[var_l | X]||_2``,
where ``mu_l(x), var_l(x)`` are the batch mean and variance of the input of the teacher's ``l``-th
BatchNorm on the generated batch ``x`` and the expectations are that layer's running statistics
(what the teacher saw on its real training data). Applied to a generator's batches (as in the
data-free KD methods that followed DAFL), the term pulls every layer's activations towards the real
data's, which a teacher's confident argmax alone does not.
"""

from __future__ import annotations

from types import TracebackType

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ["BNStatisticsLoss"]


class BNStatisticsLoss:
    """Forward hooks on every BatchNorm of ``model``; :meth:`pop` returns ``R_feature`` of the last forward.

    Use as a context manager around the teacher's forward passes (the hooks are removed on exit)::

        with BNStatisticsLoss(teacher) as bn:
            logits = teacher(images)
            r_feature = bn.pop()

    Args:
        model: The teacher, in eval mode (its running statistics are the targets and stay unchanged).

    Raises:
        ValueError: ``model`` has no BatchNorm layer (the term would be zero).
    """

    def __init__(self, model: nn.Module) -> None:
        self.layers = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
        if not self.layers:
            raise ValueError("the teacher has no BatchNorm layer with running statistics: the BN-statistics "
                             "loss needs one (use method dafl instead)")
        self._terms: list[torch.Tensor] = []
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def _hook(self, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        x = inputs[0].float()
        dims = [0, *range(2, x.dim())]
        mean = x.mean(dims)
        var = x.var(dims, unbiased=False)
        assert isinstance(module, _BatchNorm) and module.running_mean is not None and module.running_var is not None
        self._terms.append(torch.linalg.vector_norm(mean - module.running_mean)
                           + torch.linalg.vector_norm(var - module.running_var))

    def __enter__(self) -> BNStatisticsLoss:
        self._handles = [m.register_forward_hook(self._hook) for m in self.layers]
        self._terms.clear()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        self._terms.clear()

    def pop(self) -> torch.Tensor:
        """Sum over the layers of the last forward pass(es) since the previous :meth:`pop`; clears them."""
        if not self._terms:
            raise RuntimeError("no forward pass through the model since the last pop()")
        total = torch.stack(self._terms).sum()
        self._terms.clear()
        return total
