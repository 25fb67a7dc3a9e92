"""What machine a measurement ran on (standard library and onnxruntime only)."""

from __future__ import annotations

import datetime
import os
import platform
import socket
from typing import Any

__all__ = ["machine_info", "cpu_model", "default_device_name"]


def cpu_model() -> str:
    """The CPU model string (``/proc/cpuinfo`` on Linux and Android, ``platform`` elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Hardware", "Processor", "cpu model") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _simd() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            flags = next((l for l in fh if l.startswith(("flags", "Features"))), "")
    except OSError:
        return "unknown"
    words = set(flags.split(":", 1)[-1].split())
    for name in ("avx512f", "avx2", "sve", "asimd", "neon"):
        if name in words:
            return name
    return "unknown"


def default_device_name() -> str:
    """A readable device name: the host name (override it with ``--device-name``)."""
    return socket.gethostname() or "device"


def machine_info(device_name: str | None = None) -> dict[str, Any]:
    """Device, CPU, onnxruntime and time facts recorded in every table and result file."""
    import onnxruntime

    try:
        load = list(os.getloadavg())
    except (OSError, AttributeError):
        load = []
    return {
        "device": device_name or default_device_name(),
        "cpu_model": cpu_model(),
        "simd": _simd(),
        "cpu_count": os.cpu_count() or 0,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "available_providers": list(onnxruntime.get_available_providers()),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "load_average": load,
    }
