"""Default epochs of a finish: they scale with the training split; data-free finishes count steps."""

from __future__ import annotations

import pytest

from nas_prune.distill import DATA_FREE_STEPS, IMAGES_SEEN, MAX_EPOCHS, MIN_EPOCHS, DistillConfig, default_epochs


def test_labelled_finishes_see_a_fixed_number_of_images():
    assert default_epochs("kd", 10_000) == round(IMAGES_SEEN / 10_000)
    assert default_epochs("kd", 50_000) < default_epochs("kd", 10_000) < default_epochs("kd", 2_000)
    assert default_epochs("none", 1_281_167) == MIN_EPOCHS  # ImageNet-sized: still a whole schedule
    assert default_epochs("cckd", 300) == MAX_EPOCHS  # a few hundred images: not hundreds of epochs


def test_data_free_finishes_count_generator_steps():
    cfg = DistillConfig(dafl_steps_per_epoch=25)
    assert default_epochs("dafl-bn", 0, cfg) * 25 >= DATA_FREE_STEPS
    assert default_epochs("dafl", 10**9) == default_epochs("dafl", 0)  # the split's size is not read


def test_unknown_method_is_a_clear_error():
    from nas_prune.errors import NasPruneError

    with pytest.raises(NasPruneError, match="unknown distillation method"):
        default_epochs("kdd", 100)


def test_run_config_leaves_the_default_to_the_data(tmp_path):
    from nas_prune.pipeline import RunConfig

    assert RunConfig(data="imagefolder:/x", out=tmp_path).distill_epochs is None  # resolved from the split's size
    assert RunConfig(data="digits", out=tmp_path).distill_epochs == 10  # a measured preset
    assert RunConfig(data="digits", out=tmp_path, method="dafl-bn").distill_epochs is None  # steps, not the preset
    assert RunConfig(data="digits", out=tmp_path, method="dafl-bn", distill_epochs=3).distill_epochs == 3
