"""Timing onnxruntime sessions: one protocol shared by the profiler, the validator and the device runner.

Only the standard library, numpy and onnxruntime are imported here (never torch), so the same code
times networks on this machine and on a phone.

The protocol follows the measurements in docs/latency.md: the machine's speed drifts by ~30%
within minutes, interference only ever slows a run, and the ratio of two networks timed in the
same window is far steadier than either time. So networks are timed **interleaved** (round-robin,
a few runs each per round, always with a fixed reference network in the same rounds), each round
is summarised by a low percentile, and latency is stored relative to the reference. This is the
"reference device + ratio" idea of nn-Meter (Zhang et al., MobiSys 2021) reduced to its core.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from nas_prune.errors import InvalidFileError, NasPruneError

__all__ = [
    "PROVIDERS",
    "TimingSettings",
    "SessionRunner",
    "make_session",
    "summarize",
    "time_interleaved",
    "relative_records",
]

#: Short provider names accepted everywhere, mapped to onnxruntime's execution providers.
PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}

_OPT_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
               "all": "ORT_ENABLE_ALL"}


@dataclass(frozen=True)
class TimingSettings:
    """How every network is timed (recorded in tables; tables and validation use the same values).

    Attributes:
        provider: ``cpu``, ``cuda`` or ``tensorrt``.
        threads: onnxruntime intra-op threads (CPU provider).
        opt_level: Graph optimisation level: ``disable``, ``basic``, ``extended`` or ``all``.
        rounds: Round-robin rounds over the networks of a group.
        runs_per_round: Timed runs of each network per round.
        warmup: Untimed runs of each network before the first round.
        percentile: Percentile of a round's runs that summarises it; default 0, the round's fastest
            run (interference only slows: under a load of 18 on this 2-vCPU VM the median over rounds
            of per-round-minimum ratios repeated within 0.7%, per-round p10 within 2.1%).
        batch: Batch size of the input.
        provider_options: Extra options of the execution provider.
    """

    provider: str = "cpu"
    threads: int = 1
    opt_level: str = "all"
    rounds: int = 30
    runs_per_round: int = 20
    warmup: int = 10
    percentile: float = 0.0
    batch: int = 1
    provider_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.provider not in PROVIDERS:
            raise NasPruneError(f"provider {self.provider!r} is unknown: use one of {', '.join(PROVIDERS)}")
        if self.opt_level not in _OPT_LEVELS:
            raise NasPruneError(f"optimisation level {self.opt_level!r} is unknown: use one of {', '.join(_OPT_LEVELS)}")
        if self.threads < 1 or self.rounds < 1 or self.runs_per_round < 1 or self.warmup < 0 or self.batch < 1:
            raise NasPruneError("threads, rounds, runs_per_round and batch must be >= 1 and warmup >= 0")
        if not 0 <= self.percentile <= 100:
            raise NasPruneError(f"percentile {self.percentile} must be within [0, 100]")

    def to_json(self) -> dict[str, Any]:
        return {"provider": self.provider, "threads": self.threads, "opt_level": self.opt_level,
                "rounds": self.rounds, "runs_per_round": self.runs_per_round, "warmup": self.warmup,
                "percentile": self.percentile, "batch": self.batch,
                "provider_options": {str(k): v for k, v in self.provider_options.items()}}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> "TimingSettings":
        return cls(provider=str(obj["provider"]), threads=int(obj["threads"]), opt_level=str(obj["opt_level"]),
                   rounds=int(obj["rounds"]), runs_per_round=int(obj["runs_per_round"]), warmup=int(obj["warmup"]),
                   percentile=float(obj["percentile"]), batch=int(obj.get("batch", 1)),
                   provider_options=dict(obj.get("provider_options") or {}))


def _ort() -> Any:
    import onnxruntime

    return onnxruntime


def _provider_list(settings: TimingSettings) -> list[Any]:
    ort = _ort()
    name = PROVIDERS[settings.provider]
    if name not in ort.get_available_providers():
        raise NasPruneError(
            f"onnxruntime {ort.__version__} has no {name} here: install onnxruntime-gpu with CUDA/TensorRT "
            "for the cuda/tensorrt providers, or use --provider cpu"
        )
    options = dict(settings.provider_options)
    if settings.provider == "tensorrt":
        options.setdefault("trt_engine_cache_enable", True)
        options.setdefault("trt_engine_cache_path", os.path.join(os.path.expanduser("~"), ".cache", "nas-prune-trt"))
        os.makedirs(str(options["trt_engine_cache_path"]), exist_ok=True)
        return [(name, options), ("CUDAExecutionProvider", {}), "CPUExecutionProvider"]
    if settings.provider == "cuda":
        return [(name, options), "CPUExecutionProvider"]
    return [(name, options)] if options else [name]


def make_session(model: bytes | str | os.PathLike[str], settings: TimingSettings, *, what: str = "ONNX model",
                 shared_pool: bool = False) -> Any:
    """An onnxruntime session with the settings' provider, threads and optimisation level.

    ``shared_pool``: use the process's global intra-op thread pool (set up by the timing worker,
    :mod:`nas_prune.on_device._worker`) instead of a pool of the session's own.

    Raises:
        InvalidFileError: the model is not a loadable ONNX graph (one line, naming ``what``).
    """
    ort = _ort()
    so = ort.SessionOptions()
    if shared_pool:
        so.use_per_session_threads = False
    else:
        so.intra_op_num_threads = settings.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _OPT_LEVELS[settings.opt_level])
    so.log_severity_level = 3
    src = model if isinstance(model, bytes) else os.fspath(model)
    try:
        return ort.InferenceSession(src, so, providers=_provider_list(settings))
    except NasPruneError:
        raise
    except Exception as exc:  # onnxruntime raises Fail / InvalidGraph / InvalidProtobuf / RuntimeException
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InvalidFileError(f"{what} is not a valid ONNX model ({first[:160]}): regenerate it") from None


class SessionRunner:
    """One network ready to run: a session and a random input (bound on the GPU for cuda/tensorrt).

    On a GPU the input and output live on the device through IO binding (otherwise host-device
    copies dominate) and every run is followed by a synchronisation, so a timing covers the work.
    """

    def __init__(self, session: Any, settings: TimingSettings, *, seed: int = 0) -> None:
        self.session = session
        self.settings = settings
        inp = session.get_inputs()[0]
        shape = [settings.batch if not isinstance(d, int) or i == 0 else d for i, d in enumerate(inp.shape)]
        if any(not isinstance(d, int) for d in shape):
            raise InvalidFileError(f"ONNX input {inp.name!r} has symbolic dimensions {inp.shape}: export with fixed C/H/W")
        self.input_name = inp.name
        self.x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
        self.feed = {inp.name: self.x}
        self.binding = None
        if settings.provider in ("cuda", "tensorrt"):
            ort = _ort()
            self.binding = session.io_binding()
            x_dev = ort.OrtValue.ortvalue_from_numpy(self.x, "cuda", 0)
            self.binding.bind_ortvalue_input(inp.name, x_dev)
            for out in session.get_outputs():
                self.binding.bind_output(out.name, "cuda", 0)
            self._x_dev = x_dev  # keep alive

    def run(self) -> None:
        if self.binding is None:
            self.session.run(None, self.feed)
        else:
            self.session.run_with_iobinding(self.binding)
            self.binding.synchronize_outputs()

    def time(self, runs: int) -> list[float]:
        """Seconds of ``runs`` consecutive runs (each synchronised)."""
        out = []
        clock = time.perf_counter
        for _ in range(runs):
            t0 = clock()
            self.run()
            out.append(clock() - t0)
        return out


def summarize(times_s: Sequence[float]) -> dict[str, float]:
    """Median, 10th percentile, IQR, mean (milliseconds) and count of a list of run times (seconds)."""
    a = np.asarray(times_s, dtype=float) * 1e3
    q10, q25, q50, q75 = np.percentile(a, [10, 25, 50, 75])
    return {"median_ms": float(q50), "p10_ms": float(q10), "iqr_ms": float(q75 - q25), "mean_ms": float(a.mean()),
            "n": int(a.size)}


def time_interleaved(runners: Mapping[str, SessionRunner], settings: TimingSettings) -> dict[str, list[list[float]]]:
    """Time networks round-robin: every round runs each network ``runs_per_round`` times.

    The order of networks rotates from round to round so none always follows the same neighbour.
    Returns ``{name: [[seconds of round 0], [round 1], ...]}``.
    """
    names = list(runners)
    for name in names:
        for _ in range(settings.warmup):
            runners[name].run()
    rounds: dict[str, list[list[float]]] = {n: [] for n in names}
    for r in range(settings.rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            rounds[name].append(runners[name].time(settings.runs_per_round))
    return rounds


def relative_records(rounds: Mapping[str, list[list[float]]], reference: str,
                     settings: TimingSettings) -> dict[str, dict[str, float]]:
    """Per network: absolute statistics and its latency relative to ``reference`` in the same rounds.

    Each round is summarised by its ``percentile``; ``rel`` is the median over rounds of the ratio of
    the network's round value to the reference's, ``rel_iqr`` its spread.
    """
    q = settings.percentile
    ref_rounds = np.array([np.percentile(r, q) for r in rounds[reference]])
    out = {}
    for name, rs in rounds.items():
        per_round = np.array([np.percentile(r, q) for r in rs])
        ratios = per_round / ref_rounds
        flat = [t for r in rs for t in r]
        stats = summarize(flat)
        r25, r50, r75 = np.percentile(ratios, [25, 50, 75])
        stats.update({"rel": float(r50), "rel_iqr": float(r75 - r25), "round_ms": float(np.median(per_round) * 1e3),
                      "ref_round_ms": float(np.median(ref_rounds) * 1e3)})
        out[name] = stats
    return out
