"""Fixtures of the gates tests: tiny data and gates learned once per session."""

from __future__ import annotations

import dataclasses

import pytest

from nas_prune.gates import GateRun, Gates
from nas_prune.space import Gene



@pytest.fixture(scope="session")
def tiny_data():
    from nas_prune.data import load_data

    return load_data("digits", input_size=16, train_subset=128)


@pytest.fixture(scope="session")
def tiny_gates(tiny_space, tiny_data):
    """Two ratios, two seeds; a stronger regulariser and learning rate so 40 steps reach the target."""
    from nas_prune.gates import learn_gates

    return learn_gates(tiny_space, tiny_data, ratios=(0.3, 0.6), seeds=(0, 1), epochs=10, gamma=5.0, lr=0.05,
                       batch_size=32)


@pytest.fixture(scope="session")
def xy_space_and_gates(tiny_space):
    """A space whose genes are named ``x`` and ``y`` (Optuna's sampler test cases use these names)."""
    genes = (Gene("x", 16, tuple(range(2, 17, 2)), 2), Gene("y", 8, tuple(range(1, 9)), 1))
    space = dataclasses.replace(tiny_space, id="xy-space", genes=genes)
    run = lambda r, s, vals: GateRun(r, s, vals, 0.5, r, 1, True)  # noqa: E731
    runs = (
        run(0.5, 0, {"x": tuple([1.0] * 6 + [0.0] * 10), "y": tuple([0.5] * 4 + [0.0] * 4)}),
        run(0.5, 1, {"x": tuple([1.0] * 10 + [0.0] * 6), "y": tuple([0.5] * 6 + [0.0] * 2)}),
    )
    return space, Gates("xy-space", {"x": 16, "y": 8}, runs)
