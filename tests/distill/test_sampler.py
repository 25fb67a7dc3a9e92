from __future__ import annotations

from collections import Counter

import pytest
import torch

from nas_prune.distill import ClassUniformBatchSampler


def test_batches_hold_k_per_class_group():
    labels = torch.arange(10).repeat_interleave(30)[torch.randperm(300, generator=torch.Generator().manual_seed(0))]
    sampler = ClassUniformBatchSampler(labels, batch_size=24, per_class=4, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 300 // 24
    for b in batches:
        assert len(b) == 24
        counts = Counter(labels[b].tolist())
        assert len(counts) == 6 and all(c == 4 for c in counts.values())  # 6 distinct classes, 4 each
    assert batches == list(ClassUniformBatchSampler(labels, batch_size=24, per_class=4, seed=1))
    assert batches != list(ClassUniformBatchSampler(labels, batch_size=24, per_class=4, seed=2))


def test_few_classes_repeat_groups_and_bad_sizes_refused():
    labels = torch.tensor([0] * 20 + [1] * 20)
    for b in ClassUniformBatchSampler(labels, batch_size=8, per_class=2):
        assert Counter(labels[b].tolist()) == {0: 4, 1: 4}
    with pytest.raises(ValueError):
        ClassUniformBatchSampler(labels, batch_size=10, per_class=4)
