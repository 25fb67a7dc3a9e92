"""``narrow``: a pruned network cut further gives the shapes ``materialize`` gives from the unpruned one."""

from __future__ import annotations

import pytest
import torch

from nas_prune.errors import InvalidArchitectureError
from nas_prune.space import ChannelSpace, materialize, narrow, shipped_space


@pytest.mark.parametrize("name", ["mobilenet_v2-32", "regnet_x_400mf-32"])  # depthwise / grouped convolutions
def test_narrowing_a_pruned_network_matches_materializing_the_unpruned_one(name):
    space = ChannelSpace.load(shipped_space(name))
    model = space.build_model()
    wide, small = space.uniform(0.75), space.uniform(0.5)
    cut = narrow(materialize(model, wide, space=space), wide, small, space=space)
    direct = materialize(model, small, space=space)
    assert {k: v.shape for k, v in cut.state_dict().items()} == {k: v.shape for k, v in direct.state_dict().items()}
    assert cut(space.example_input()).shape == (1, 10)


def test_narrowing_keeps_the_strongest_channels_and_refuses_to_widen(tiny_space):
    model = tiny_space.build_model().eval()
    wide = tiny_space.uniform(0.75)
    pruned = materialize(model, wide, space=tiny_space)
    same = narrow(pruned, wide, wide, space=tiny_space)
    x = tiny_space.example_input()
    with torch.no_grad():
        assert torch.allclose(same(x), pruned(x))  # nothing to cut: the same function
    with pytest.raises(InvalidArchitectureError, match="can only be narrowed"):
        narrow(pruned, wide, tiny_space.full(), space=tiny_space)
