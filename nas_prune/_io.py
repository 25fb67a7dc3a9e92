"""Atomic file writes and validated JSON reads shared by every stage."""

from __future__ import annotations

import glob
import hashlib
import json
import math
import os
import socket
import tempfile
from pathlib import Path
from typing import Any, Callable

from nas_prune.errors import InvalidFileError

__all__ = ["atomic_write_bytes", "writes_files", "atomic_write_text", "write_json", "read_json", "require", "require_header", "package_files"]


#: Short tag of this host in temporary file names (so that a sweep only judges its own host's writers).
_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _remove_orphans(path: Path) -> None:
    """Delete ``path``'s temporary files left by writers on this host that were killed mid-write.

    A SIGKILL between ``mkstemp`` and the rename leaves ``.<name>.<host>-<pid>.<random>.tmp``
    behind; the next write of the same file removes it when that process no longer exists. Files
    of live writers and of other hosts (a shared filesystem) are left alone.
    """
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.{_HOST}-*.tmp"):
        pid_text = tmp.name[len(path.name) + len(_HOST) + 3:].split(".", 1)[0]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and not _alive(int(pid_text)):
            try:
                tmp.unlink()
            except FileNotFoundError:
                pass


def writes_files() -> bool:
    """Whether this process writes files: always, except the ranks other than 0 of a ``torchrun`` job
    (``WORLD_SIZE`` > 1, ``RANK`` != 0), which train beside rank 0 and leave the files to it."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1 or os.environ.get("RANK", "0") == "0"


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename.

    A reader never sees a half-written file: it sees the old file or the new one. In a ``torchrun``
    job only rank 0 writes (:func:`writes_files`); the others return the path without writing.
    """
    path = Path(path)
    if not writes_files():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphans(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_HOST}-{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write text atomically (UTF-8)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _reject_nonfinite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"non-finite number {obj!r}")
    if isinstance(obj, dict):
        return {k: _reject_nonfinite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_reject_nonfinite(v) for v in obj]
    return obj


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically. NaN and infinity are refused."""
    text = json.dumps(_reject_nonfinite(obj), indent=2, sort_keys=False, allow_nan=False)
    return atomic_write_text(path, text + "\n")


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def read_json(path: str | os.PathLike[str], *, what: str = "JSON file") -> Any:
    """Read a JSON file, turning every failure into a one-line :class:`InvalidFileError`.

    ``NaN`` and ``Infinity`` are refused (they are not JSON and poison predictions).
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidFileError(f"{what} {path} does not exist: check the path")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidFileError(f"{what} {path} cannot be read ({exc}): regenerate it") from None
    try:
        return json.loads(text, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InvalidFileError(
            f"{what} {path} is not valid JSON ({msg}): the file is corrupt or truncated, regenerate it"
        ) from None


def describe_error(exc: BaseException, limit: int = 160) -> str:
    """``Type: message`` of ``exc`` on one line (a key or value quoted in it may hold newlines)."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:limit]


def require(cond: bool, path: str | os.PathLike[str], what: str, problem: str | Callable[[], str]) -> None:
    """Raise a one-line :class:`InvalidFileError` about ``path`` unless ``cond`` holds."""
    if not cond:
        text = problem() if callable(problem) else problem
        raise InvalidFileError(f"{what} {path} is invalid: {text}; regenerate it with nas-prune")


def require_header(obj: Any, path: str | os.PathLike[str], what: str, *, fmt: str, version: int) -> None:
    """Check a document's ``format`` tag and ``version`` (every nas-prune JSON file carries both)."""
    require(isinstance(obj, dict) and obj.get("format") == fmt, path, what,
            f"not a nas-prune {what} (format must be {fmt!r})")
    require(obj.get("version") == version, path, what,
            f"version {obj.get('version')!r} is not supported (this nas-prune reads {version})")


def package_files(package: str, folder: str, pattern: str) -> tuple[Path, list[Path]]:
    """A data folder shipped inside ``package`` (read with :mod:`importlib.resources`) and its files.

    Works from a checkout and from an installed wheel alike; pip installs packages as files, so the
    folder is a real directory (a zipped import, which nas-prune does not support, would not be).

    Returns:
        ``(folder, sorted files matching pattern)``; no files when the folder is missing.
    """
    from importlib import resources

    root = Path(str(resources.files(package) / folder))
    return root, (sorted(root.glob(pattern)) if root.is_dir() else [])
