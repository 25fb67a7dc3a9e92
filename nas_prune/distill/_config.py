"""Settings of a distillation run."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["DistillConfig"]


@dataclass(frozen=True, kw_only=True)
class DistillConfig:
    """Hyper-parameters of :func:`~nas_prune.distill.distill` (defaults follow the papers).

    Attributes:
        batch_size: Real-data batch size (KD, CCKD, labels only).
        lr: Peak learning rate of the student's one-cycle SGD (Nesterov, momentum 0.9).
        weight_decay: SGD weight decay.
        temperature: KD temperature ``T`` (Hinton et al.: 4 is common).
        soft_weight: Weight of the ``T^2``-scaled KL term. 0.5 / 0.5 by measurement
            (``benchmarks/finish_recipe.py``, Fashion-MNIST, teacher 86.71%, 3 seeds): at 0.35x of the
            teacher's latency 86.80% against 86.08% with Hinton's 0.9 / 0.1; at 0.5x 86.59 against 86.62%.
        hard_weight: Weight of the cross-entropy on labels.
        data_free_soft_weight: Weight of the KL term of a data-free student (no labels, so no hard
            term): the 0.9 the data-free figures were measured with.
        cc_weight: Weight of CCKD's correlation term on the *mean* over the batch's ``n^2`` pairs.
            64 = 0.004 * 128^2 is the paper's 0.004 applied to the *sum* over a 128-batch's pairs.
            Measured at the start of training (Fashion-MNIST, mobilenet_v2 teacher, 0.6-width
            student, batch 128): KD loss 8.5, ``L_cc`` 0.15, so 64 * ``L_cc`` = 9.7 while 0.004 on
            the mean would be 6e-4 (inert). The learned projection shrinks the term quickly.
        cc_gamma: CCKD RBF kernel ``gamma`` (paper: 0.4).
        cc_order: CCKD Taylor order ``P`` (paper: 2).
        embed_dim: Common dimension of CCKD's projected embeddings.
        per_class: CCKD class-uniform sampler: samples per class in a batch (paper: 2-4 best).
        dafl_batch_size: Generated images per DAFL step (DAFL: 512 on MNIST; batch 64 stalls).
        dafl_steps_per_epoch: DAFL steps per epoch (no data, so an epoch is a step count). The
            default length is :data:`~nas_prune.distill.DATA_FREE_STEPS` (600) steps, 30 epochs:
            ``dafl-bn`` with a 0.5-width mobilenet_v2 student reached 80.8 / 79.4 / 78.9% on
            Fashion-MNIST (teacher 87.0%; 68.1% after 200 steps) and 96.9% on digits (teacher
            97.2%), about 16 min on one CPU thread at batch 256 (``benchmarks/data_free.py``).
        generator_lr: Adam learning rate of the DAFL generator.
        generator_width: Channels of the generator's first feature map. DAFL's is 128; on one CPU
            thread that generator alone took 7.9 s per 256 images at 32x32 (13x the mobilenet_v2
            teacher's forward and backward), width 32 takes 0.6 s (``benchmarks/data_free.py``).
        latent_dim: DAFL noise size.
        one_hot_weight: DAFL ``L_oh`` weight (paper: 1).
        activation_weight: DAFL ``L_a`` weight (paper: 0.1).
        entropy_weight: DAFL ``L_ie`` weight (paper: 5 on MNIST).
        bn_weight: ``dafl-bn``: weight of DeepInversion's BatchNorm-statistics term (summed over
            the teacher's BatchNorm layers) in the generator's loss.
        keep_best: Methods that read the training split: the student kept at the end is the epoch
            with the best validation accuracy (ties: the later epoch), not the last one. Data-free
            methods keep the last epoch (they must not select on labelled images).
        patience: Stop early when the validation accuracy has not risen for this many epochs
            (``None``: train every epoch). Only with ``keep_best``; the best epoch is restored.
        cache_teacher_mb: Precompute the teacher's outputs on the (un-augmented) training set when
            they fit in this many MiB (exact, and saves a teacher forward per step).
    """

    batch_size: int = 128
    lr: float = 0.05
    weight_decay: float = 5e-4
    temperature: float = 4.0
    soft_weight: float = 0.5
    hard_weight: float = 0.5
    data_free_soft_weight: float = 0.9
    cc_weight: float = 64.0
    cc_gamma: float = 0.4
    cc_order: int = 2
    embed_dim: int = 128
    per_class: int = 4
    dafl_batch_size: int = 256
    dafl_steps_per_epoch: int = 20
    generator_lr: float = 0.01
    generator_width: int = 32
    latent_dim: int = 100
    one_hot_weight: float = 1.0
    activation_weight: float = 0.1
    entropy_weight: float = 5.0
    bn_weight: float = 1.0
    keep_best: bool = True
    patience: int | None = None
    cache_teacher_mb: float = 512.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
