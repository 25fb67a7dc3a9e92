"""Stage bookkeeping for ``nas-prune run``: each finished stage is recorded and skipped on re-run."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from nas_prune._io import read_json, write_json
from nas_prune.distributed import broadcast_object, world
from nas_prune.errors import InvalidFileError
from nas_prune.progress import console

__all__ = ["StageCache"]


class StageCache:
    """``DIR/stages.json``: per stage, its result (plain JSON) and seconds; written after each stage.

    A stage whose record exists and whose output files all exist is skipped; one killed part-way
    is re-run (the stage's own checkpoints make that resume where it stopped).
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.path = run_dir / "stages.json"
        self.records: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            try:
                obj = read_json(self.path, what="stage record")
                # keep only well-formed records: a damaged one only costs re-running its stage
                self.records = {k: v for k, v in obj.items() if isinstance(v, dict) and isinstance(v.get("result"), dict)
                                and isinstance(v.get("seconds"), (int, float))} if isinstance(obj, dict) else {}
            except InvalidFileError:
                self.records = {}  # a damaged record only costs re-running stages

    def run(self, name: str, fn: Callable[[], dict[str, Any]], *, outputs: tuple[str, ...] = (),
            everyone: bool = False) -> dict[str, Any]:
        """Run stage ``name`` (or return its record when it finished before).

        Under ``torchrun`` (:mod:`nas_prune.distributed`) rank 0 decides whether the stage is
        cached; a stage that trains (``everyone=True``) runs on every process, the others on rank 0
        alone while the rest wait; rank 0's result is every process's.
        """
        w = world()
        rec = self.records.get(name)
        cached = bool(rec and all((self.run_dir / o).exists() for o in outputs))
        if w.active:
            cached, rec = broadcast_object((cached, rec))
        if cached and rec is not None:
            console.print(f"[dim]· {name:<11} cached ({rec['seconds']:.1f} s when run)[/dim]")
            return rec["result"]
        console.print(f"[bold]▶ {name}[/bold]")
        start = time.perf_counter()
        result = fn() if everyone or w.main else {}
        if w.active:
            result = broadcast_object(result)  # the others wait here for rank 0 (and its files)
        seconds = time.perf_counter() - start
        self.records[name] = {"result": result, "seconds": seconds}
        write_json(self.path, self.records)
        console.print(f"[green]✓ {name:<11}[/green] {seconds:6.1f} s  {self._line(result)}")
        return result

    @staticmethod
    def _line(result: dict[str, Any]) -> str:
        bits = []
        for k, v in result.items():
            if isinstance(v, float):
                bits.append(f"{k}={v:.4g}")
            elif isinstance(v, (int, str)) and len(str(v)) < 40:
                bits.append(f"{k}={v}")
        return " ".join(bits[:5])

    def seconds(self) -> dict[str, float]:
        return {k: round(v["seconds"], 1) for k, v in self.records.items()}
