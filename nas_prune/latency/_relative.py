"""Timing networks relative to a table's reference network, a group caught by other work timed again.

The measurement a calibration rests on (:mod:`nas_prune.latency._calibrate`): networks are timed in
groups interleaved with the table's reference network, with the table's own timing settings, so
that each network's ratio to the reference survives the machine's drift.
"""

from __future__ import annotations

import os
import time
from typing import Any, Mapping, Sequence

import numpy as np

from nas_prune.latency._table import LatencyTable
from nas_prune.on_device import TimingSettings

__all__ = ["NOISY_GROUP", "SLOW_REFERENCE", "load_average", "measure_relative"]

#: A measured group is re-timed when its median per-round ratio spread is over this (quiet: 1-2.5 %) ...
NOISY_GROUP = 0.05
#: ... or its reference ran this much slower than in the groups before it.
SLOW_REFERENCE = 1.15


def load_average() -> list[float]:
    """The machine's 1, 5 and 15-minute load averages, rounded to 0.01 (empty where there are none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return []


def measure_relative(table: LatencyTable, space: Any, archs: Sequence[Mapping[str, int]], *, factory: Any = None,
                     max_seconds: float | None = None, group_size: int = 8, rounds: int | None = None,
                     id_prefix: str = "c", retries: int = 2) -> list[dict[str, Any]]:
    """Time ``archs`` in groups interleaved with the table's reference network, with the table's settings.

    A group caught by a burst of other work is measured again (up to ``retries`` times, the least
    noisy attempt kept): one whose median spread of per-round ratios (``rel_iqr / rel``) is over
    ``NOISY_GROUP``, or whose reference ran more than ``SLOW_REFERENCE`` times slower than in the
    groups before. On the loaded 2-vCPU VM such a group moved 7 of 60 networks by 13-30 % between two
    measurements minutes apart while the others repeated to 1 % (``benchmarks/latency_adapt.py``).

    Args:
        table: The table whose reference network and timing settings are used.
        space: The table's :class:`~nas_prune.space.ChannelSpace`.
        archs: The networks to time, as channels per gene.
        factory: The :class:`~nas_prune.latency._nets.NetFactory` that makes their ONNX (default: a new one).
        max_seconds: Start no group that would end past this many seconds of measurement.
        group_size: Networks per interleaved group.
        rounds: Interleaved rounds per group (default: the table's).
        id_prefix: Prefix of the networks' ids.
        retries: Times a noisy group is measured again, at most.

    Returns:
        One record per measured network (``channels``, ``rel``, ``round_ms``, ``ref_round_ms``, ...,
        ``group_noise``, ``group_attempts``, ``load_average`` after its group); with ``max_seconds``
        it stops after the group that passes it.
    """
    from nas_prune.latency._nets import NetFactory
    from nas_prune.on_device import run_groups

    table.check_space(space)
    s = dict(table.settings)
    if rounds is not None:
        s["rounds"] = int(rounds)
    settings = TimingSettings.from_json(s)
    factory = factory or NetFactory(space)
    ref = table.reference_channels
    nets = [{"id": f"{id_prefix}{i:04d}", "file": str(i), "channels": dict(a)} for i, a in enumerate(archs)]

    def load(file: str) -> bytes:
        if file == "reference":
            return factory.onnx(ref) if ref else factory.full_onnx
        return factory.onnx(nets[int(file)]["channels"])

    records: list[dict[str, Any]] = []
    refs: list[float] = []
    start = time.perf_counter()
    last = 0.0  # seconds the last group took: a group that would end past max_seconds is not started
    for i in range(0, len(nets), group_size):
        if max_seconds is not None and records and time.perf_counter() - start + last > max_seconds:
            break
        t_group = time.perf_counter()
        best: tuple[float, list[dict[str, Any]]] | None = None
        for attempt in range(1 + retries):
            group: list[dict[str, Any]] = []
            run_groups(load, "reference", nets[i:i + group_size], settings, group_size=group_size, done={},
                       on_group=group.extend)
            noise = float(np.median([r["rel_iqr"] / r["rel"] for r in group]))
            ref_ms = group[0]["ref_round_ms"]
            slow = len(refs) >= 2 and ref_ms > SLOW_REFERENCE * float(np.median(refs))
            if best is None or noise < best[0]:
                best = (noise, [{**r, "group_noise": noise, "group_attempts": attempt + 1} for r in group])
            if noise <= NOISY_GROUP and not slow:
                break
        assert best is not None
        last = time.perf_counter() - t_group
        refs.append(best[1][0]["ref_round_ms"])
        load_now = load_average()
        records += [{**r, "load_average": load_now} for r in best[1]]
    return records
