"""Render a report in headless Chromium (Debian's ``chromium``) to check what a person will see."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from nas_prune.errors import NasPruneError

__all__ = ["find_chromium", "screenshot"]

_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--hide-scrollbars", "--virtual-time-budget=8000")


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def screenshot(html: str | os.PathLike[str], png: str | os.PathLike[str], *, width: int = 1200,
               height: int = 3200, timeout: float = 120) -> Path:
    """Screenshot ``html`` (a local file) into ``png``; raises :class:`NasPruneError` without Chromium."""
    browser = find_chromium()
    if browser is None:
        raise NasPruneError("chromium is not installed: apt-get install chromium (Debian) to render reports")
    png = Path(png).resolve()
    with tempfile.TemporaryDirectory() as profile:
        cmd = [browser, *_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
               f"--screenshot={png}", Path(html).resolve().as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if not png.exists():
        raise NasPruneError(f"chromium did not write {png} (exit {proc.returncode}): {proc.stderr.strip()[-200:]}")
    return png
