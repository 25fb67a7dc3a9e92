"""``nas_prune.prune(model, data, budget)``: the whole job in one call on a module that holds its weights."""

from __future__ import annotations

import pytest
import torch

import nas_prune
from nas_prune.errors import NasPruneError
from tests.conftest import tiny_resnet

TINY = dict(input_size=16, profile=True, gate_epochs=1, pnet_epochs=2, n_trials=8, distill_epochs=1, validate_n=3,
            finalists=3)


@pytest.fixture(scope="module")
def trained_tiny():
    """A tiny ResNet trained in the test (the user's network, weights in the module)."""
    from nas_prune.data import load_data
    from nas_prune.training import TrainConfig, fit, set_seed

    set_seed(0)
    model = tiny_resnet()
    data = load_data("digits", input_size=16)
    fit(model, data.train, None, TrainConfig(epochs=6, batch_size=64, lr=0.05, label="user"))
    return model.eval()


@pytest.mark.slow
def test_prune_a_module_in_one_call(trained_tiny, tmp_path):
    before = {k: v.clone() for k, v in trained_tiny.state_dict().items()}
    result = nas_prune.prune(trained_tiny, "digits", budget="1ms", out=tmp_path / "run", **TINY)
    assert isinstance(result, nas_prune.PruneResult)
    assert result.model(torch.randn(2, 3, 16, 16)).shape == (2, 10)
    assert result.summary["teacher"]["source"] == "trained weights"  # the module's weights, not trained again
    assert result.feasible is result.summary["feasible"] and 0 < result.latency_ratio
    assert result.accuracy == result.summary["final"]["accuracy"]
    assert result.summary["final"]["params"] <= result.summary["teacher"]["params"]
    assert all(torch.equal(v, before[k]) for k, v in trained_tiny.state_dict().items())  # the caller's module untouched
    again = nas_prune.prune(trained_tiny, "digits", budget="1ms", out=tmp_path / "run", **TINY)  # resumes: all cached
    assert again.summary["final"]["channels"] == result.summary["final"]["channels"]


def test_an_unknown_setting_is_one_line_naming_the_valid_ones(tmp_path):
    with pytest.raises(NasPruneError, match=r"unknown setting\(s\) n_trails: .*n_trials"):
        nas_prune.prune("resnet18", out=tmp_path, n_trails=3)
    with pytest.raises(NasPruneError, match="brings its own weights"):
        nas_prune.prune(tiny_resnet(), out=tmp_path, weights="IMAGENET1K_V1")


def test_a_registered_module_builds_fresh_weights_of_the_same_architecture():
    from nas_prune.models import build_model

    net = tiny_resnet()
    from nas_prune.api import register_module

    name = register_module(net)
    assert name == register_module(tiny_resnet())  # the name follows the architecture
    built = build_model(name)
    assert built.state_dict().keys() == net.state_dict().keys()
    assert not torch.equal(built.state_dict()["stem.0.weight"], net.state_dict()["stem.0.weight"])
