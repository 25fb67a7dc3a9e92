"""The calibration record a latency table carries: what was decided, on which machine, with what.

Kept apart from the building (``_build``) and calibrating (``_calibrate``) code, which both write it.
"""

from __future__ import annotations

import datetime
from typing import Any, Mapping

from nas_prune.on_device import TIMING_PROTOCOL, machine_key

__all__ = ["calibration_record"]


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _ort_version() -> str:
    import onnxruntime

    return str(onnxruntime.__version__)


def calibration_record(kind: str, settings: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """What ``meta["calibration"]`` holds: the decision, this machine, onnxruntime, provider and date."""
    import socket

    return {"kind": kind, "machine": machine_key(), "host": socket.gethostname(), "onnxruntime": _ort_version(),
            "provider": str(settings.get("provider", "cpu")),
            "provider_options": dict(settings.get("provider_options") or {}), "timing_protocol": TIMING_PROTOCOL,
            "date": _now(), **extra}
