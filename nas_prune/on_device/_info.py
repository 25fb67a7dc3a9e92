"""What machine a measurement ran on (standard library and onnxruntime only)."""

from __future__ import annotations

import datetime
import os
import platform
import socket
from typing import Any

__all__ = ["machine_info", "machine_key", "cpu_model", "cpu_model_from", "default_device_name", "emulation"]

#: ARM's part numbers (``CPU part`` of ``/proc/cpuinfo``, implementer 0x41) of common phone and board cores.
ARM_PARTS = {
    0xd03: "Cortex-A53", 0xd04: "Cortex-A35", 0xd05: "Cortex-A55", 0xd07: "Cortex-A57", 0xd08: "Cortex-A72",
    0xd09: "Cortex-A73", 0xd0a: "Cortex-A75", 0xd0b: "Cortex-A76", 0xd0c: "Neoverse-N1", 0xd0d: "Cortex-A77",
    0xd40: "Neoverse-V1", 0xd41: "Cortex-A78", 0xd44: "Cortex-X1", 0xd46: "Cortex-A510", 0xd47: "Cortex-A710",
    0xd48: "Cortex-X2", 0xd49: "Neoverse-N2", 0xd4d: "Cortex-A715", 0xd4e: "Cortex-X3", 0xd80: "Cortex-A520",
    0xd81: "Cortex-A720", 0xd82: "Cortex-X4",
}

#: Machine names of one instruction-set family: a 32-bit userland on a 64-bit kernel is not emulation.
_ARCH_FAMILY = {"x86_64": "x86", "amd64": "x86", "i386": "x86", "i686": "x86", "aarch64": "arm", "arm64": "arm",
                "riscv64": "riscv", "ppc64le": "power", "s390x": "s390"}


def _family(machine: str) -> str:
    m = machine.lower()
    return _ARCH_FAMILY.get(m, "arm" if m.startswith("arm") else m)


def cpu_model_from(text: str) -> str | None:
    """The CPU model named by a ``/proc/cpuinfo`` text, or ``None``.

    x86 names its model (``model name``). ARM kernels give each core's ``CPU part``, decoded here
    (``Cortex-A55 x4 + Cortex-A76 x4`` on a big.LITTLE phone), after the board (``Model``, a
    Raspberry Pi's) or the SoC (``Hardware``, most Android kernels).
    """
    parts: dict[str, int] = {}
    named: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if not value:
            continue
        if key in ("model name", "cpu model"):
            return value
        if key in ("Model", "Hardware", "Processor") and not value.startswith("AArch64 Processor"):
            named.setdefault(key, value)
        if key == "CPU part":
            try:
                name = ARM_PARTS.get(int(value, 16), f"ARM part {value}")
            except ValueError:
                continue
            parts[name] = parts.get(name, 0) + 1
    board = named.get("Model") or named.get("Hardware") or named.get("Processor")
    cores = " + ".join(f"{name} x{count}" for name, count in parts.items())
    if board and cores:
        return f"{board} ({cores})"
    return board or cores or None


def cpu_model() -> str:
    """The CPU model string (``/proc/cpuinfo`` on Linux and Android, ``platform`` elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            found = cpu_model_from(fh.read())
        if found:
            return found
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def emulation() -> str | None:
    """How this process is emulated, or ``None`` when it runs natively.

    ``NAS_PRUNE_EMULATED`` names the emulator when the caller knows it (``examples/aarch64_emulated.sh``
    sets ``qemu-aarch64``). Otherwise user-mode emulation (qemu-user) shows as a machine of another
    instruction-set family than the kernel's: qemu fakes ``uname`` but not ``/proc/sys/kernel/arch``.
    Timings under emulation say nothing about any device's speed.
    """
    named = os.environ.get("NAS_PRUNE_EMULATED", "").strip()
    if named:
        return named
    kernel, machine = _read_first_line("/proc/sys/kernel/arch"), platform.machine()
    if kernel and machine and _family(kernel) != _family(machine):
        return f"user-mode emulation ({machine} on a {kernel} kernel)"
    return None


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
    info: dict[str, Any] = {
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
    emulated = emulation()
    if emulated:
        info["emulated"] = emulated
    return info
