"""Fixtures: a tiny latency table measured quickly on the tiny space."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_table_file(tiny_space, tmp_path_factory):
    from nas_prune.latency import build_table

    path = tmp_path_factory.mktemp("table") / "tiny-table.json"
    build_table(tiny_space, threads=1, output=path, nets=12, rounds=3, runs_per_round=5, warmup=2, group_size=6,
                device_name="test-vm")
    return path


@pytest.fixture(scope="session")
def tiny_table(tiny_table_file):
    from nas_prune.latency import LatencyTable

    return LatencyTable.load(tiny_table_file)
