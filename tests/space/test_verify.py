"""Models nas-prune cannot prune are refused up front, in one line naming them; tracing has a time limit."""

from __future__ import annotations

import time

import pytest
from torch import nn

from nas_prune.errors import UnknownModelError, UnsupportedModelError
from nas_prune.space import ChannelSpace, trace_time_limit, verify_space


class Sleepy(nn.Module):
    """A network whose forward takes far longer than the limit (a stand-in for a graph that traces for minutes)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):  # noqa: ANN001, ANN201
        time.sleep(0.2)
        return self.fc(self.conv(x).mean((2, 3)))


def sleepy(num_classes: int = 10) -> nn.Module:
    return Sleepy(num_classes)


def test_tracing_that_runs_over_its_time_limit_is_refused_naming_the_model():
    with pytest.raises(UnsupportedModelError, match=r"model tests.space.test_verify:sleepy: tracing .* took over 0.5 s"):
        with trace_time_limit(0.5, "tests.space.test_verify:sleepy"):
            time.sleep(3)
    ChannelSpace.from_name("tests.space.test_verify:sleepy", input_size=8, trace_seconds=30)  # in time: fine


def test_a_prunable_model_passes(tiny_space):
    verify_space(tiny_space)


def test_a_space_whose_pruned_networks_break_is_refused(tiny_space, monkeypatch):
    import nas_prune.space._verify as verify

    def broken(model, arch, space):  # noqa: ANN001, ANN202
        raise IndexError("index 24 is out of bounds for dimension 0 with size 24")

    monkeypatch.setattr(verify, "materialize", broken)
    with pytest.raises(UnsupportedModelError, match=r"model tests.conftest:tiny_resnet: pruning its channels breaks "
                                                     r"\(IndexError: index 24"):
        verify_space(tiny_space)


def test_timm_models_by_name_with_their_pretrained_preprocessing():
    pytest.importorskip("timm")
    from nas_prune.models import timm_preprocess

    space = ChannelSpace.from_name("timm:resnet10t", input_size=32, num_classes=10)
    verify_space(space)
    assert timm_preprocess("timm:resnet10t") == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert timm_preprocess("resnet18") is None
    with pytest.raises(UnknownModelError, match="timm has no model 'no_such_net'"):
        ChannelSpace.from_name("timm:no_such_net")


def test_timm_missing_is_one_line(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "timm", None)
    with pytest.raises(UnknownModelError, match=r"needs timm: pip install 'nas-prune\[timm\]'"):
        ChannelSpace.from_name("timm:resnet18")


@pytest.mark.slow
@pytest.mark.parametrize("name, why", [("ghostnet_100", "pruning its channels breaks"),
                                       ("cspresnet50", "share layer names")])
def test_timm_models_nas_prune_cannot_prune_are_refused(name, why):
    pytest.importorskip("timm")
    space = ChannelSpace.from_name(f"timm:{name}", input_size=32, num_classes=10)
    with pytest.raises(UnsupportedModelError, match=f"model timm:{name}: .*{why}"):
        verify_space(space)
