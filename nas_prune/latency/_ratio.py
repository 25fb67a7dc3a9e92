"""Does a network meet a latency budget *here*? Its ratio to the teacher, measured until the noise allows a verdict.

A table's prediction picks candidates; the verdict on the budget is a measurement. Each candidate
is timed interleaved with the teacher (the drift-proof protocol of :mod:`nas_prune.on_device._timing`:
per-round low percentile, ratio in the same round), and the median per-round ratio is compared with
the budget's ratio.

Rounds in one pair of onnxruntime sessions agree closely with each other, but not with the next
pair: on a shared VM the ratio of a small network to its teacher moves by several per cent from
one measurement to the next, seconds or minutes apart (measured: one architecture at 0.49x in the
finalists and 0.57x in the final check 40 s later, both with tight intervals over rounds), with the
host's load and with where the sessions' buffers land. So the rounds are split into ``sessions``
blocks, each with freshly created sessions and spread in time (``pairs``: block by block over
every candidate, ``pause_s`` between blocks), and the uncertainty of the median is a cluster
bootstrap over blocks: it covers that drift, not only the scatter of rounds. When the interval
straddles the limit (noise wider than the margin) more blocks are taken, up to ``max_rounds``
rounds; a candidate still undecided then is judged on its median and the verdict says so.

The VM's neighbours come and go: for a minute at a time the teacher runs 20-40 % slower and a small
network's ratio to it reads 10-15 % higher (measured: 0.54x in a contended final check, 0.48x for
the same file re-checked 3 minutes later with the teacher back at its quiet speed). With
``quiet_tol`` the verdict is taken on the blocks where the teacher ran at its quiet speed (the
machine as the table knows it), more blocks being taken while there are too few.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import numpy as np

if TYPE_CHECKING:
    from nas_prune.on_device import TimingSettings

__all__ = ["measure_ratios", "ratio_verdict", "QUIET_TOL"]

#: A block is quiet when its teacher ran within this fraction of the teacher's fastest block.
QUIET_TOL = 0.08
#: Quiet blocks needed before a verdict is taken on them (fewer: more blocks, then every block counts).
#: 2, not 3: in a 45-s final check on a contended VM (teacher 20-35 % slow) 2 of 36 blocks were quiet.
MIN_QUIET_BLOCKS = 2
#: The teacher's name among the timed models.
TEACHER = "__teacher__"


def _median_interval(ratios: np.ndarray, blocks: np.ndarray | None = None, *, resamples: int = 500,
                     level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap interval of the median of ``ratios``; over ``blocks`` (clusters) when given."""
    rng = np.random.default_rng(seed)
    ids = np.unique(blocks) if blocks is not None else np.array([])
    if len(ids) >= 3:
        members = [ratios[blocks == b] for b in ids]
        meds = np.array([np.median(np.concatenate([members[k] for k in rng.integers(0, len(ids), len(ids))]))
                         for _ in range(resamples)])
    else:
        idx = rng.integers(0, len(ratios), (resamples, len(ratios)))
        meds = np.median(ratios[idx], axis=1)
    return float(np.percentile(meds, 50 * (1 - level))), float(np.percentile(meds, 50 * (1 + level)))


def ratio_verdict(ratio: float, interval: tuple[float, float] | list[float], limit: float) -> dict[str, Any]:
    """Whether a measured ratio meets ``limit``: by its interval where that is wholly on one side, else by its median.

    Returns:
        ``meets`` and ``decided_by`` (``"interval"``, or ``"median"`` while the interval straddles ``limit``).
    """
    lo, hi = interval
    decided = hi <= limit or lo > limit
    return {"meets": bool(hi <= limit) if decided else bool(ratio <= limit),
            "decided_by": "interval" if decided else "median"}


def _block_medians(values: np.ndarray, blocks: np.ndarray) -> dict[int, float]:
    """The median of ``values`` in each block, in block order."""
    return {int(b): float(np.median(values[blocks == b])) for b in np.unique(blocks)}


@dataclass
class _Timings:
    """Every candidate's per-round measurements so far, each round tagged with the block it was timed in."""

    ratio: dict[str, list[float]]
    block: dict[str, list[int]]
    teacher_ms: dict[str, list[float]]
    own_ms: dict[str, list[float]]

    @classmethod
    def empty(cls, names: Iterable[str]) -> _Timings:
        """No rounds yet for any of ``names``."""
        names = list(names)
        return cls(ratio={n: [] for n in names}, block={n: [] for n in names}, teacher_ms={n: [] for n in names},
                   own_ms={n: [] for n in names})

    def add(self, name: str, own_s: np.ndarray, teacher_s: np.ndarray, block: int) -> None:
        """Append the rounds of one block: the candidate's and the teacher's seconds per round."""
        self.ratio[name] += list(own_s / teacher_s)
        self.block[name] += [block] * len(own_s)
        self.teacher_ms[name] += list(teacher_s * 1e3)
        self.own_ms[name] += list(own_s * 1e3)


def _time_pass(timings: _Timings, onnx: Mapping[str, bytes], todo: list[str], base: TimingSettings, *, batch: int,
               sessions: int, pairs: bool, pause_s: float, block: int) -> int:
    """Time one pass of ``batch`` rounds of the candidates ``todo`` with the teacher, into ``timings``.

    Args:
        timings: Where the rounds go.
        onnx: ONNX bytes of the teacher (``TEACHER``) and of every candidate.
        todo: The candidates still undecided.
        base: The timing settings (``rounds`` is set per block).
        batch: Rounds in this pass.
        sessions: Blocks per pass at most, each timed in freshly created onnxruntime sessions.
        pairs: Time each candidate alone with the teacher, block by block over the candidates.
        pause_s: Seconds to wait before every block but the run's first.
        block: The number of this pass's first block.

    Returns:
        The number of the next block.
    """
    from nas_prune.on_device import TimingSettings, time_models

    q = base.percentile
    seeds = {n: i for i, n in enumerate(onnx)}
    whats = {n: "teacher" if n == TEACHER else f"model {n!r}" for n in onnx}
    sizes = [len(c) for c in np.array_split(np.arange(batch), min(sessions, batch))]
    for size in sizes:
        if block > 0 and pause_s > 0:
            time.sleep(pause_s)
        settings_now = TimingSettings.from_json({**base.to_json(), "rounds": size})
        groups = [[n] for n in todo] if pairs else [todo]
        for group in groups:
            names = [TEACHER, *group]  # fresh sessions for every block
            times = time_models({k: onnx[k] for k in names}, settings_now, seeds=seeds, whats=whats)
            t_round = np.array([np.percentile(r, q) for r in times[TEACHER]])
            for name in group:
                timings.add(name, np.array([np.percentile(r, q) for r in times[name]]), t_round, block)
        block += 1
    return block


def _teacher_blocks(timings: _Timings, names: Iterable[str],
                    quiet_teacher_ms: float | None) -> tuple[dict[str, dict[int, float]], float]:
    """The teacher's median milliseconds in each block, per candidate, and its fastest block so far.

    The fastest block over every candidate (or ``quiet_teacher_ms`` when faster) is the machine uncontended.
    """
    t_blocks = {n: _block_medians(np.array(timings.teacher_ms[n]), np.array(timings.block[n])) for n in names
                if timings.teacher_ms[n]}
    fastest = min([min(v.values()) for v in t_blocks.values()] + ([quiet_teacher_ms] if quiet_teacher_ms else []))
    return t_blocks, fastest


def _verdict(timings: _Timings, name: str, teacher_blocks: Mapping[int, float], fastest: float, *, limit: float,
             quiet_tol: float | None, sessions: int, taken: int, max_rounds: int) -> dict[str, Any] | None:
    """The verdict on candidate ``name`` from its rounds so far (``None``: more blocks are needed).

    More are needed while fewer than ``MIN_QUIET_BLOCKS`` of its blocks were quiet, or while the
    interval of its median straddles ``limit``, until ``max_rounds`` rounds were ``taken``.

    Args:
        timings: The rounds timed so far.
        name: The candidate.
        teacher_blocks: The teacher's median milliseconds in each of the candidate's blocks.
        fastest: The teacher's fastest block so far (milliseconds).
        limit: The budget as a ratio to the teacher's latency.
        quiet_tol: A block is quiet when its teacher ran within this fraction of ``fastest``
            (``None``: every block is).
        sessions: Blocks per pass.
        taken: Rounds timed so far.
        max_rounds: Rounds at most.

    Returns:
        The candidate's result (the fields :func:`measure_ratios` documents), or ``None``.
    """
    r, blocks = np.array(timings.ratio[name]), np.array(timings.block[name])
    quiet_ids = [b for b, t in teacher_blocks.items() if quiet_tol is None or t <= fastest * (1 + quiet_tol)]
    enough = len(quiet_ids) >= min(MIN_QUIET_BLOCKS, sessions)
    if not enough and taken < max_rounds:
        return None  # the machine was contended: wait for quiet blocks
    use = np.isin(blocks, quiet_ids) if enough else np.ones(len(r), dtype=bool)
    ru, bu = r[use], blocks[use]
    lo, hi = _median_interval(ru, bu if sessions > 1 else None)
    med = float(np.median(ru))
    verdict = ratio_verdict(med, (lo, hi), limit)
    if verdict["decided_by"] == "median" and taken < max_rounds:
        return None
    q25, q75 = np.percentile(ru, [25, 75])
    meds = list(_block_medians(ru, bu).values())
    return {"ratio": med, "interval": [lo, hi], "iqr": float(q75 - q25), "rounds": len(ru), "rounds_all": len(r),
            "ms": float(np.median(np.array(timings.own_ms[name])[use])),
            "teacher_ms": float(np.median(np.array(timings.teacher_ms[name])[use])),
            **verdict, "limit": float(limit),
            "block_ratios": list(_block_medians(r, blocks).values()),
            "block_teacher_ms": list(teacher_blocks.values()),
            "drift": float(np.std(meds, ddof=1) / np.mean(meds)) if len(meds) > 1 else 0.0,
            "quiet_blocks": len(np.unique(bu)), "quiet_teacher_ms": float(fastest),
            "contended": not enough, "load_average": [round(x, 2) for x in os.getloadavg()]}


def measure_ratios(models: Mapping[str, Any], teacher: Any, input_shape: Any, settings: Mapping[str, Any], *,
                   limit: float, rounds: int = 30, max_rounds: int = 120, sessions: int = 1, pairs: bool = False,
                   pause_s: float = 0.0, quiet_tol: float | None = None,
                   quiet_teacher_ms: float | None = None) -> dict[str, dict[str, Any]]:
    """Measure each model's latency ratio to ``teacher`` and decide whether it is at most ``limit``.

    Args:
        models: ``{name: ONNX bytes or path}`` of the candidates.
        teacher: ONNX bytes or path of the unpruned network.
        input_shape: ``(C, H, W)``.
        settings: Timing settings (a table's ``settings``); ``rounds`` is set here.
        limit: The budget as a ratio to the teacher's latency.
        rounds: Rounds of the first pass.
        max_rounds: Rounds at most for a candidate whose interval straddles ``limit``.
        sessions: Blocks per pass, each timed in freshly created onnxruntime sessions; with 3 or
            more the interval is a bootstrap over blocks (see the module docstring).
        pairs: Time each candidate alone with the teacher (the final check's protocol), block by
            block over the candidates so that one candidate's blocks are spread over the pass.
            Otherwise every candidate and the teacher are interleaved in the same rounds.
        pause_s: Seconds to wait between blocks (spreads a single candidate's blocks in time).
        quiet_tol: Judge on the *quiet* blocks only: those whose teacher (the same network every
            time, so its slowdown is the machine's contention) ran within this fraction of its
            fastest block (``quiet_teacher_ms`` when faster). With fewer than ``MIN_QUIET_BLOCKS``
            quiet blocks more are taken, up to ``max_rounds``; then every block counts and
            ``contended`` says so. ``None``: every block counts.
        quiet_teacher_ms: The teacher's quiet latency from an earlier measurement of this run.

    Returns:
        Per name: ``ratio`` (median of per-round ratios), ``interval`` (95 % bootstrap interval of
        that median), ``iqr``, ``rounds`` (judged on) and ``rounds_all`` (timed), ``ms`` and ``teacher_ms`` (medians of the per-round
        values), ``meets`` (the verdict), ``decided_by`` (``"interval"``, or ``"median"`` when the
        noise stayed wider than the margin after ``max_rounds``), ``block_ratios`` and
        ``block_teacher_ms`` (the medians of each block) with ``drift`` (the relative standard
        deviation of the ratios of the blocks judged on), ``quiet_blocks`` (how many of them were
        judged on), ``quiet_teacher_ms``, ``contended`` and ``load_average``.
    """
    from nas_prune.latency._measure import to_onnx_bytes
    from nas_prune.on_device import TimingSettings

    base = TimingSettings.from_json({**settings, "rounds": rounds})
    sessions = max(1, int(sessions))
    onnx = {TEACHER: to_onnx_bytes(teacher, input_shape), **{n: to_onnx_bytes(m, input_shape) for n, m in models.items()}}
    timings = _Timings.empty(models)
    todo = list(models)
    done: dict[str, dict[str, Any]] = {}
    taken, block = 0, 0
    while todo:
        batch = rounds if taken == 0 else min(rounds, max_rounds - taken)
        block = _time_pass(timings, onnx, todo, base, batch=batch, sessions=sessions, pairs=pairs, pause_s=pause_s,
                           block=block)
        taken += batch
        t_blocks, fastest = _teacher_blocks(timings, models, quiet_teacher_ms)
        left = []
        for name in todo:
            verdict = _verdict(timings, name, t_blocks[name], fastest, limit=limit, quiet_tol=quiet_tol,
                               sessions=sessions, taken=taken, max_rounds=max_rounds)
            if verdict is None:
                left.append(name)
            else:
                done[name] = verdict
        todo = left
    return {name: done[name] for name in models}
