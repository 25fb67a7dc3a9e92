"""Checking a table against fresh end-to-end measurements of random architectures."""

from __future__ import annotations

import os
import random
import socket
import time
from typing import Any

import numpy as np

from nas_prune.latency._table import LatencyTable
from nas_prune.on_device import TimingSettings, run_groups

__all__ = ["validate_table", "rescore", "predict_cpu_us", "bootstrap_intervals", "narrowest_fraction", "flat_table_warning",
           "FLAT_FRACTION"]

#: A table whose narrowest network is predicted above this fraction of the full one cannot tell widths apart.
FLAT_FRACTION = 0.9


def _scores(pred: np.ndarray, meas: np.ndarray) -> dict[str, float]:
    err = np.abs(pred - meas) / meas
    return {"within_5pct": float(np.mean(err <= 0.05)), "within_10pct": float(np.mean(err <= 0.10)),
            "median_abs_err": float(np.median(err)), "p95_abs_err": float(np.percentile(err, 95)),
            "max_abs_err": float(err.max())}


def narrowest_fraction(table: LatencyTable, space: Any) -> float:
    """The narrowest architecture's predicted latency as a fraction of the full network's.

    No relative budget below this fraction can be met. Near 1 the device's latency is a fixed
    overhead (a tiny network or a fast device: session and kernel-launch costs, not the channels),
    and the table cannot tell one width from another.
    """
    return _narrowest_and_full(table, space)[0]


def _narrowest_and_full(table: LatencyTable, space: Any) -> tuple[float, float]:
    """:func:`narrowest_fraction` and the full network's predicted milliseconds."""
    from nas_prune.space import smallest

    full_ms = float(table.predict(space.full()))
    return float(table.predict(smallest(space))) / full_ms, full_ms


def flat_table_warning(table: LatencyTable, space: Any) -> str | None:
    """One line saying that ``table`` cannot tell widths apart (:data:`FLAT_FRACTION`), or None when it can."""
    frac, full_ms = _narrowest_and_full(table, space)
    if frac <= FLAT_FRACTION:
        return None
    return (f"warning: this latency table cannot tell widths apart: the narrowest network is predicted at "
            f"{frac:.0%} of the full one's {full_ms:.4g} ms (fixed overhead, not channels), "
            f"so no budget below {frac:.2f}x can be met; time a larger input or batch, or budget FLOPs instead")


def predict_cpu_us(table: LatencyTable, archs: list[Any], *, calls: int = 20000) -> float:
    """Mean CPU time of one ``table.predict`` call in microseconds (process time: on a shared machine
    wall time mostly measures the other processes)."""
    loops = max(1, calls // max(1, len(archs)))
    t = time.process_time()
    for _ in range(loops):
        for a in archs:
            table.predict(a)
    return (time.process_time() - t) / (loops * len(archs)) * 1e6


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman's rank correlation; ``None`` when undefined (fewer than 3 points or a constant input)."""
    from scipy.stats import spearmanr

    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(spearmanr(a, b).statistic)


def bootstrap_intervals(pred: np.ndarray, meas: np.ndarray, *, resamples: int = 1000, seed: int = 0,
                        level: float = 0.95) -> dict[str, list[float | None]]:
    """Percentile-bootstrap intervals (resampling architectures) of the validation figures.

    A validation of 60 networks puts "95 % within 10 %" at roughly 87-99 %: the interval says how
    far the next 60 networks may land from this figure.
    """
    from scipy.stats import rankdata

    rng = np.random.default_rng(seed)
    n = len(meas)
    err = np.abs(pred - meas) / meas
    stats: dict[str, list[float]] = {"within_5pct": [], "within_10pct": [], "median_abs_err": [], "spearman": []}
    for _ in range(resamples):
        i = rng.integers(0, n, n)
        e = err[i]
        stats["within_5pct"].append(float(np.mean(e <= 0.05)))
        stats["within_10pct"].append(float(np.mean(e <= 0.10)))
        stats["median_abs_err"].append(float(np.median(e)))
        a, b = rankdata(pred[i]), rankdata(meas[i])
        if np.ptp(a) > 0 and np.ptp(b) > 0:
            stats["spearman"].append(float(np.corrcoef(a, b)[0, 1]))
    lo, hi = 50 * (1 - level), 50 * (1 + level)
    return {k: ([float(np.percentile(v, lo)), float(np.percentile(v, hi))] if v else [None, None])
            for k, v in stats.items()}


def rescore(table: LatencyTable, networks: list[dict[str, Any]], *, seed: int = 0) -> dict[str, Any]:
    """Score ``table`` on networks another validation measured (its ``networks``): nothing is timed.

    Two models compared on the same measurements differ by the model alone, not by the machine's
    mood between two validations.
    """
    meas = np.array([float(r["measured_ms"]) for r in networks])
    pred = np.array([table.relative(r["channels"]) * float(r["reference_ms"]) for r in networks])
    return {"n": len(meas), **_scores(pred, meas), "spearman": spearman(pred, meas),
            "intervals": bootstrap_intervals(pred, meas, seed=seed)}


def validate_table(table: LatencyTable, space: Any, *, n: int = 50, seed: int = 0, group_size: int = 8,
                   rounds: int | None = None, exact: bool = False, keep_networks: bool = False) -> dict[str, Any]:
    """Draw ``n`` random architectures, time each end to end with the table's settings, compare.

    Architectures are uniform over each gene's choices (``space.sample``). Each group of networks
    is timed interleaved with the reference network; the prediction for a network is
    ``table.relative(arch) * reference_ms_now`` (the reference timed in the same rounds), which is
    the drift-proof protocol. With ``exact`` every network is materialized with Torch-Pruning and
    exported with torch (~1 s each); otherwise its ONNX is sliced from the full network's export
    (:class:`~nas_prune.latency._nets.NetFactory`: the same Conv/Gemm shapes, milliseconds each).
    ``absolute`` reports the same comparison with the reference latency
    stored in the table instead (what a plain ``predict`` gives when the machine's speed moved).

    Returns:
        ``n``, ``within_5pct``, ``within_10pct``, ``median_abs_err``, ``p95_abs_err``, ``spearman``,
        ``predict_us`` (mean CPU time of one ``predict`` call), ``absolute``, ``intervals`` (95 %
        bootstrap intervals over architectures, :func:`bootstrap_intervals`), the load average
        before, after every group (``load_average_during``) and after the measurement, and
        context (threads, reference latencies, the table's calibration, seconds); with
        ``keep_networks`` also ``networks``: every network's channels, measured and reference
        milliseconds (what :func:`rescore` scores another table on).
    """
    table.check_space(space)
    t0 = time.time()
    rng = random.Random(seed)
    archs = [space.sample(rng) for _ in range(n)]
    s = dict(table.settings)
    if rounds is not None:
        s["rounds"] = rounds
    settings = TimingSettings.from_json(s)
    from nas_prune.latency._nets import NetFactory

    factory = NetFactory(space, fast=not exact)
    records, load_start, load_during = _time_networks(table, space, archs, settings, factory, exact=exact,
                                                      group_size=group_size)
    networks = [{"channels": dict(a.channels), "measured_ms": float(r["round_ms"]), "reference_ms": float(r["ref_round_ms"])}
                for a, r in zip(archs, records)]
    meas = np.array([r["measured_ms"] for r in networks])
    pred_abs = np.array([table.predict(a) for a in archs])
    flops = np.array([space.count(a)["flops"] for a in archs], dtype=float)
    # the drift-proof comparison (the reference timed in the same rounds) is rescore's
    out: dict[str, Any] = {**rescore(table, networks, seed=seed), "predict_us": predict_cpu_us(table, archs),
                           "absolute": {**_scores(pred_abs, meas), "spearman": spearman(pred_abs, meas)}}
    if keep_networks:
        out["networks"] = networks
    out.update({
        "space": space.id, "nets_method": "materialize+export" if exact else factory.method, "threads": settings.threads, "provider": settings.provider, "seed": seed,
        "flops_spearman": spearman(flops, meas),
        "reference_ms_table": table.reference_ms,
        "reference_ms_now": float(np.median([r["ref_round_ms"] for r in records])),
        "measured_ms_range": [float(meas.min()), float(meas.max())],
        "table_date": table.meta.get("date"), "load_average_start": load_start,
        "load_average_end": list(os.getloadavg()), "load_average_during": load_during,
        "load_1min_max": max((l[0] for l in load_during), default=None), "seconds": round(time.time() - t0, 1),
        **_provenance(table),
    })
    return out


def _time_networks(table: LatencyTable, space: Any, archs: list[Any], settings: TimingSettings, factory: Any, *,
                   exact: bool, group_size: int) -> tuple[list[dict[str, Any]], list[float], list[list[float]]]:
    """Time ``archs`` end to end in groups interleaved with the table's reference network.

    Args:
        table: The table whose reference network is timed with them.
        space: The table's space.
        archs: The architectures to time.
        settings: The timing settings.
        factory: The :class:`~nas_prune.latency._nets.NetFactory` of ``space``.
        exact: Materialize and export every network with torch instead of slicing the full network's ONNX.
        group_size: Networks per interleaved group.

    Returns:
        The networks' records in the order of ``archs``, the load average before the measurement
        and the load average after every group.
    """
    from nas_prune.latency._measure import arch_onnx_bytes

    nets = [{"id": f"v{i:04d}", "file": f"v{i:04d}", "channels": dict(a.channels)} for i, a in enumerate(archs)]

    def load(file: str) -> bytes:
        if file == "reference":
            ref = table.reference_channels
            return factory.onnx(ref) if ref else factory.full_onnx
        if exact:
            return arch_onnx_bytes(space, archs[int(file[1:])], factory.base)
        return factory.onnx(archs[int(file[1:])])

    records: list[dict[str, Any]] = []
    load_start = list(os.getloadavg())
    load_during: list[list[float]] = []

    def on_group(group: list[dict[str, Any]]) -> None:
        records.extend(group)
        load_during.append([round(x, 2) for x in os.getloadavg()])

    run_groups(load, "reference", nets, settings, group_size=group_size, done={}, on_group=on_group)
    return records, load_start, load_during


def _provenance(table: LatencyTable) -> dict[str, Any]:
    """A validation's ``calibration`` (the table's kind), ``validated_on`` (this machine) and ``built_on``."""
    import onnxruntime

    from nas_prune.on_device import machine_key

    return {
        "calibration": (table.meta.get("calibration") or {}).get("kind"),
        "validated_on": {"host": socket.gethostname(), "machine_key": machine_key(),
                         "onnxruntime": onnxruntime.__version__},
        "built_on": {"device": table.meta.get("device"), "machine_key": table.meta.get("machine_key"),
                     "onnxruntime": table.meta.get("onnxruntime"), "date": table.meta.get("date")},
    }
