"""Scoring that scales: a capped, seeded validation subset kept as uint8 and normalised per batch."""

from __future__ import annotations

import torch

from nas_prune.data import DataBundle, Preprocess
from nas_prune.pruningnet import PruningNet, PruningNetEvaluator


def test_validation_is_a_capped_seeded_uint8_subset(tiny_space, digits16):
    pnet = PruningNet(tiny_space)
    full = PruningNetEvaluator(pnet, digits16, recal_batches=2, batch_size=32, max_val_images=None)
    capped = PruningNetEvaluator(pnet, digits16, recal_batches=2, batch_size=32, max_val_images=100, seed=3)
    again = PruningNetEvaluator(pnet, digits16, recal_batches=2, batch_size=32, max_val_images=100, seed=3)
    assert full.val_images == len(digits16.val) and capped.val_images == 100
    assert all(x.dtype == torch.uint8 for x, _ in capped.val) and all(x.dtype == torch.uint8 for x in capped.recal)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(capped.val, again.val))  # the same subset every time
    arch = tiny_space.uniform(0.5)
    assert capped.score(arch)["score"] == again.score(arch)["score"]


def test_scores_follow_the_datas_preprocessing(tiny_space, digits16):
    pnet = PruningNet(tiny_space)
    other = Preprocess((0.1,), (0.5,))
    moved = DataBundle("digits", digits16.train.subset(torch.arange(len(digits16.train))),
                       digits16.val.subset(torch.arange(len(digits16.val))), digits16.test, 10, 16, other)
    moved.train.preprocess = moved.val.preprocess = other
    a = PruningNetEvaluator(pnet, digits16, recal_batches=2, batch_size=64).score(tiny_space.full())
    b = PruningNetEvaluator(pnet, moved, recal_batches=2, batch_size=64).score(tiny_space.full())
    assert a["loss"] != b["loss"]  # the same images, normalised otherwise: other inputs reach the network


def test_the_subset_is_as_large_as_the_standard_error_needs(tiny_space, monkeypatch):
    """Within the cap: p (1 - p) / se^2 images at the unpruned network's accuracy (issue 28, scoring that scales)."""
    import nas_prune.pruningnet._evaluator as ev
    from nas_prune.pruningnet import images_for_se

    assert images_for_se(0.9, 0.005) == 3600 and images_for_se(0.5, 0.005) == 10_000
    assert images_for_se(0.999, 0.005) == ev.MIN_VAL_IMAGES  # never fewer than the floor
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (4000, 3, 16, 16), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (4000,), generator=g)
    data = ((images[:512].float() / 255, labels[:512]), (images.float() / 255, labels))
    pnet = PruningNet(tiny_space)
    monkeypatch.setattr(PruningNetEvaluator, "_score_on", lambda self, arch, val: {"accuracy": 0.9})  # the pilot's
    cut = PruningNetEvaluator(pnet, data, recal_batches=1, batch_size=100)
    whole = PruningNetEvaluator(pnet, data, recal_batches=1, batch_size=100, target_se=None)
    assert cut.pilot_accuracy == 0.9 and cut.val_images == 3600 and whole.val_images == 4000
    assert all(torch.equal(a[0], b[0]) for a, b in zip(cut.val, whole.val))  # a prefix of the same seeded subset
