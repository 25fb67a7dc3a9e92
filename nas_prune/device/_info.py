"""What machine a measurement ran on (standard library and onnxruntime only)."""

from __future__ import annotations

import datetime
import os
import platform
import socket
from typing import Any

__all__ = ["machine_info", "machine_key", "cpu_model", "default_device_name"]


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


def _read_first_line(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.readline().strip()
    except OSError:
        return ""


def machine_key() -> str:
    """A 16-hex-digit identity of this machine *as booted now*: host name, machine id and boot id.

    The CPU model string is the same on every VM of a kind, and VMs cloned from one image share
    their host name and ``/etc/machine-id``; the kernel's random boot id is new on every boot. A
    latency table is therefore "this machine's" only until a reboot (after which the VM may run on
    other hardware): the next use re-checks it, which costs seconds (``nas_prune.latency`` calibration).
    """
    import hashlib

    parts = [socket.gethostname(), _read_first_line("/etc/machine-id") or _read_first_line("/var/lib/dbus/machine-id"),
             _read_first_line("/proc/sys/kernel/random/boot_id")]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def machine_info(device_name: str | None = None) -> dict[str, Any]:
    """Device, CPU, onnxruntime and time facts recorded in every table and result file."""
    import onnxruntime

    try:
        load = list(os.getloadavg())
    except (OSError, AttributeError):
        load = []
    return {
        "device": device_name or default_device_name(),
        "machine_key": machine_key(),
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
