"""Fixtures of the robustness tests: small real artefacts of the tiny space, and of another model."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def robust_artifacts(tiny_space, tmp_path_factory):
    """A real table and real gates of the tiny space; a space and a table of another model."""
    from nas_prune.data import load_data
    from nas_prune.gates import learn_gates
    from nas_prune.latency import build_table
    from nas_prune.space import ChannelSpace

    d = tmp_path_factory.mktemp("robust")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        tiny_space.save(d / "space.json")
        tiny_space.uniform(0.5).save(d / "arch.json")
        build_table(tiny_space, output=d / "table.json", nets=8, rounds=3, runs_per_round=5, warmup=2,
                    device_name="test-cpu")
        bundle = load_data("digits", input_size=16, train_subset=64)
        learn_gates(tiny_space, bundle, ratios=(0.5,), epochs=1, batch_size=32).save(d / "gates.json")
        other = ChannelSpace.from_name("tests.conftest:tiny_resnet", input_size=16, num_classes=4)
        other.save(d / "other-space.json")
        other.uniform(0.5).save(d / "other-arch.json")
        build_table(other, output=d / "other-table.json", nets=8, rounds=3, runs_per_round=5, warmup=2,
                    device_name="test-cpu")
    finally:
        torch.set_num_threads(threads)
    return d


@pytest.fixture(scope="session")
def search_artifacts(tiny_space, tmp_path_factory):
    """What ``nas-prune search`` reads: space.json, table.json and a briefly trained pnet.pt."""
    from nas_prune.data import load_data
    from nas_prune.latency import build_table
    from nas_prune.pruningnet import train_pruningnet

    d = tmp_path_factory.mktemp("search-artifacts")
    tiny_space.save(d / "space.json")
    build_table(tiny_space, output=d / "table.json", nets=8, rounds=3, runs_per_round=5, warmup=2,
                device_name="test-cpu")
    train_pruningnet(tiny_space, load_data("digits", input_size=16, train_subset=256), epochs=1,
                     checkpoint=d / "pnet.pt")
    return d


# The search tests' throw-away PostgreSQL server on 127.0.0.1.
from tests.search.conftest import postgres_url  # noqa: E402,F401
