"""Small stand-ins with the methods the search uses of a latency table and a PruningNet evaluator.

They keep the search tests fast and independent of the other stages; integration tests use the
real ``LatencyTable`` and ``PruningNetEvaluator`` where those exist.
"""

from __future__ import annotations

from typing import Any

from nas_prune.errors import SpaceMismatchError
from nas_prune.space import Architecture, ChannelSpace


class FakeTable:
    """Latency in ms = ``base + per_channel * sum(channels)`` (monotone in every gene, like a real table)."""

    def __init__(self, space: ChannelSpace, *, base: float = 0.1, per_channel: float = 0.01, name: str = "fake-cpu") -> None:
        self.space_id = space.id
        self.base = base
        self.per_channel = per_channel
        self.meta: dict[str, Any] = {"device_name": name, "provider": "cpu", "threads": 1}
        self.calls = 0

    def check_space(self, space: ChannelSpace) -> None:
        if space.id != self.space_id:
            raise SpaceMismatchError(f"table is for {self.space_id}, not {space.id}")

    def predict(self, arch: Architecture) -> float:
        self.calls += 1
        return self.base + self.per_channel * sum(arch.channels.values())


class FakeEvaluator:
    """Accuracy grows with the kept width, with a deterministic per-architecture wiggle."""

    def __init__(self, space: ChannelSpace) -> None:
        self.space = space
        self.calls: list[dict[str, int]] = []

    def score(self, arch: Architecture) -> dict[str, float]:
        self.calls.append(dict(arch.channels))
        full = sum(g.width for g in self.space.genes)
        frac = sum(arch.channels.values()) / full
        wiggle = (sum((i + 1) * c for i, c in enumerate(arch.channels.values())) % 7) / 700
        return {"accuracy": 0.5 + 0.4 * frac + wiggle, "seconds": 0.0}
