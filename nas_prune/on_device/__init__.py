"""On-device latency runner: needs only Python, numpy and onnxruntime (never torch).

Usage on the device (copy ``nas_prune/__init__.py``, ``nas_prune/errors.py``, ``nas_prune/_io.py``
and ``nas_prune/on_device/`` there, or install nas-prune without dependencies)::

    python -m nas_prune.on_device run bundle.zip --threads 1 -o results.json
"""

from __future__ import annotations

from nas_prune.on_device._info import cpu_model_from, emulation, machine_info, machine_key
from nas_prune.on_device._runner import (
    BUNDLE_FORMAT,
    FORMAT_VERSION,
    RESULTS_FORMAT,
    load_results,
    read_plan,
    run_bundle,
    run_groups,
    safe_extract,
)
from nas_prune.on_device._timing import (
    PROVIDERS,
    SessionRunner,
    TimingSettings,
    make_session,
    relative_records,
    summarize,
    time_interleaved,
)
from nas_prune.on_device._worker import TIMING_PROTOCOL, close_workers, time_models, uses_worker

__all__ = [
    "BUNDLE_FORMAT",
    "FORMAT_VERSION",
    "PROVIDERS",
    "RESULTS_FORMAT",
    "SessionRunner",
    "TIMING_PROTOCOL",
    "TimingSettings",
    "close_workers",
    "cpu_model_from",
    "emulation",
    "load_results",
    "machine_info",
    "machine_key",
    "make_session",
    "read_plan",
    "relative_records",
    "run_bundle",
    "run_groups",
    "safe_extract",
    "summarize",
    "time_interleaved",
    "time_models",
    "uses_worker",
]
