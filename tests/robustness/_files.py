"""Helpers of the hostile-input tests: run the CLI in-process, snapshot files, build hostile payloads."""

from __future__ import annotations

from pathlib import Path

import torch

from nas_prune.cli import main


def run_main(capsys, *args: str) -> tuple[int, str, str]:  # noqa: ANN001
    """``nas-prune ARGS`` in this process: (exit code, stdout, stderr). Unhandled exceptions propagate."""
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Bytes and mtime of every file under ``root``."""
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(root.rglob("*")) if p.is_file()}


def assert_untouched(before: dict[str, tuple[bytes, int]], root: Path) -> None:
    """Every file that existed before is still there, byte for byte, with its mtime."""
    after = snapshot(root)
    for name, (data, mtime) in before.items():
        assert name in after, f"{name} was deleted"
        assert after[name] == (data, mtime), f"{name} was modified"


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    """Exit code 2 and a single ``nas-prune: error:`` line that names every needle; no traceback."""
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("nas-prune: error:"), err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])


class Payload:
    """Unpickling this runs ``open(marker, "w")``: code execution, visible as a new file."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):  # noqa: ANN204
        return (open, (self.marker, "w"))


def write_malicious_checkpoint(path: Path, marker: Path) -> Path:
    """A torch checkpoint shaped like ours whose pickle creates ``marker`` when loaded unsafely."""
    torch.save({"state_dict": {"w": torch.zeros(2)}, "format": "nas-prune/model", "epoch": 1, "evil": Payload(marker)},
               path)
    return path


def payload_is_live(tmp: Path) -> bool:
    """Sanity check that the payload really executes under a full (unsafe) unpickler."""
    probe, marker = tmp / "probe.pt", tmp / "probe-marker"
    write_malicious_checkpoint(probe, marker)
    torch.load(probe, weights_only=False)
    alive = marker.exists()
    marker.unlink(missing_ok=True)
    probe.unlink()
    return alive


def write_foreign_checkpoint(path: Path) -> Path:
    """A well-formed torch checkpoint that is not one of ours (someone else's state dict)."""
    torch.save({"model": {"layer.weight": torch.ones(3, 3)}, "step": 7}, path)
    return path


def write_truncated_checkpoint(path: Path) -> Path:
    """Half of a real checkpoint: what a crash during a non-atomic write would leave."""
    torch.save({"state_dict": {"w": torch.randn(64, 64)}, "epoch": 1, "history": []}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


__all__ = ["run_main", "snapshot", "assert_untouched", "assert_one_line_error", "Payload",
           "write_malicious_checkpoint", "payload_is_live", "write_foreign_checkpoint", "write_truncated_checkpoint"]
