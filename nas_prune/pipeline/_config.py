"""What ``nas-prune run`` does, as data: one dataclass, with presets per dataset."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nas_prune.errors import NasPruneError

__all__ = ["RunConfig", "Budget", "PRESETS"]


@dataclass(frozen=True)
class Budget:
    """A latency budget: relative to the teacher's measured latency (``0.5x``) or absolute (``1.8ms``)."""

    value: float
    relative: bool

    @classmethod
    def parse(cls, text: str) -> "Budget":
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(x|ms|us)\s*", text)
        if not m or float(m.group(1)) <= 0:
            raise NasPruneError(f"budget {text!r} is not understood: write e.g. 0.5x (of the teacher) or 1.8ms")
        value, unit = float(m.group(1)), m.group(2)
        if unit == "x" and value > 1:
            raise NasPruneError(f"budget {text!r} is above the teacher's latency: use a fraction such as 0.5x")
        return cls(value / 1000 if unit == "us" else value, unit == "x")

    def to_ms(self, teacher_ms: float) -> float:
        return self.value * teacher_ms if self.relative else self.value

    def __str__(self) -> str:
        return f"{self.value:g}x" if self.relative else f"{self.value:g}ms"


# Stage settings per dataset: digits is small (the demo must finish in minutes), fashion-mnist is the
# realistic recipe. Anything can be overridden on the command line.
PRESETS: dict[str, dict[str, Any]] = {
    "digits": dict(teacher_epochs=10, gate_epochs=3, pnet_epochs=15, n_trials=80, distill_epochs=10,
                   train_subset=None, batch_size=64),
    "fashion-mnist": dict(teacher_epochs=8, gate_epochs=2, pnet_epochs=12, n_trials=200, distill_epochs=8,
                          train_subset=10000, batch_size=128),
}
_DEFAULT_PRESET = dict(teacher_epochs=8, gate_epochs=3, pnet_epochs=12, n_trials=150, distill_epochs=8,
                       train_subset=None, batch_size=128)


@dataclass
class RunConfig:
    """Every setting of one ``nas-prune run``; stored in ``DIR/config.json``."""

    model: str = "mobilenet_v2"
    data: str = "digits"
    budget: str = "0.5x"
    table: Path | None = None
    profile: bool = False
    backend: str = "optuna"
    sampler: str = "evolution"
    out: Path = Path("runs/demo")
    input_size: int = 32
    threads: int = 1
    method: str = "kd"
    init: str = "pnet"
    ratios: tuple[float, ...] = (0.3, 0.5, 0.7)
    seed: int = 0
    teacher_epochs: int | None = None
    gate_epochs: int | None = None
    pnet_epochs: int | None = None
    n_trials: int | None = None
    distill_epochs: int | None = None
    train_subset: int | None = None
    batch_size: int | None = None
    validate_n: int = 8
    finalists: int = 8
    calibration: str = "auto"
    overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        Budget.parse(self.budget)
        if self.calibration not in ("auto", "refresh", "off"):
            raise NasPruneError(f"calibration {self.calibration!r}: use auto, refresh or off")
        if self.backend not in ("optuna", "nni"):
            raise NasPruneError(f"backend {self.backend!r}: use optuna or nni")
        preset = PRESETS.get(self.data.partition(":")[0], _DEFAULT_PRESET)
        for key, value in preset.items():
            if getattr(self, key) is None:
                setattr(self, key, value)

    @property
    def budget_spec(self) -> Budget:
        return Budget.parse(self.budget)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["out"] = str(self.out)
        d["table"] = str(self.table) if self.table else None
        d["ratios"] = list(self.ratios)
        return d
