"""Extension points of the PruningNet: weight generators by name, layer kinds through one handler table."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nas_prune.errors import NasPruneError
from nas_prune.pruningnet import GENERATORS, PruningNet, generator_names, get_generator, register_generator
from nas_prune.pruningnet._layers import HANDLERS, LayerKind
from tests.conftest import run_main


class _Constant(nn.Module):
    """A toy generator: the base weight, scaled by one learned factor, whatever the encoding."""

    def __init__(self, base_weight: torch.Tensor, n_inputs: int, *, hidden: int, rank: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(base_weight.detach().clone())
        self.scale = nn.Parameter(torch.ones(()))
        self.n_inputs = n_inputs

    def forward(self, encoding: torch.Tensor) -> torch.Tensor:
        assert encoding.shape == (self.n_inputs,)
        return self.weight * self.scale


@pytest.fixture
def toy_generator():
    register_generator("toy-constant")(_Constant)
    yield "toy-constant"
    GENERATORS.pop("toy-constant", None)


def test_a_registered_generator_builds_trains_and_reloads(tiny_space, toy_generator, tmp_path):
    assert toy_generator in generator_names() and get_generator(toy_generator) is _Constant
    pnet = PruningNet(tiny_space, generator=toy_generator)
    assert all(isinstance(g, _Constant) for g in pnet.generators.values())
    x = torch.randn(4, *tiny_space.input_shape)
    out = pnet(x, tiny_space.uniform(0.5))
    assert out.shape == (4, 10)
    out.sum().backward()
    assert any(g.scale.grad is not None for g in pnet.generators.values())
    with torch.no_grad():
        for g in pnet.generators.values():
            g.scale.fill_(0.5)
    loaded = PruningNet.load(pnet.save(tmp_path / "p.pt"))  # the checkpoint names the generator
    assert loaded.config["generator"] == toy_generator
    assert all(float(g.scale.detach()) == 0.5 for g in loaded.generators.values())


def test_generator_names_are_checked_in_one_line(tiny_space, toy_generator, capsys, tiny_space_file, tmp_path):
    with pytest.raises(NasPruneError, match="registered already"):
        register_generator(toy_generator)(_Constant)
    with pytest.raises(NasPruneError, match=r"unknown generator 'bogus': use one of lowrank, mlp, toy-constant") as info:
        PruningNet(tiny_space, generator="bogus")
    assert "\n" not in str(info.value)
    code, _, err = run_main(capsys, "pruningnet", "train", "--space", str(tiny_space_file), "--generator", "bogus",
                            "-o", str(tmp_path / "p.pt"))
    assert code == 2 and "unknown generator 'bogus'" in err and not (tmp_path / "p.pt").exists()


def test_every_layer_kind_has_a_handler_and_others_are_left_alone(tiny_space):
    assert set(HANDLERS) == set(LayerKind)
    assert LayerKind.of("conv") is LayerKind.CONV and LayerKind.of("attention") is None
    pnet = PruningNet(tiny_space)
    kinds = {name: kind for name, kind in pnet._layers}
    assert {kinds[n] for n in kinds} == {LayerKind.CONV, LayerKind.LINEAR, LayerKind.NORM}
    generated = {n for n, k in kinds.items() if HANDLERS[k].generated}
    assert set(pnet.full_weights(tiny_space.full())) == generated == {n for n, k in kinds.items()
                                                                      if k in (LayerKind.CONV, LayerKind.LINEAR)}
