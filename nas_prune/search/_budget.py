"""Latency budgets: one latency table (a target device) and the most milliseconds it may predict."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

from nas_prune.errors import NasPruneError
from nas_prune.space import Architecture, ChannelSpace

__all__ = ["LatencyBudget", "LatencyPredictor", "parse_milliseconds", "min_latency_architecture"]

_UNITS = {"ms": 1.0, "us": 1e-3, "µs": 1e-3, "s": 1e3}


class LatencyPredictor(Protocol):
    """What a search needs from a latency table (:class:`nas_prune.latency.LatencyTable`)."""

    meta: dict[str, Any]

    def predict(self, arch: Architecture) -> float:  # milliseconds
        ...


def parse_milliseconds(text: str | float) -> float:
    """``"1.8ms"``, ``"1800us"``, ``"0.0018s"`` or a bare number of milliseconds -> milliseconds.

    Raises:
        NasPruneError: not a positive finite duration.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ms|us|µs|s)?\s*", str(text))
        if not m:
            raise NasPruneError(f"budget {text!r} is not a duration: write it like 1.8ms, 1800us or 0.0018s")
        value = float(m.group(1)) * _UNITS[m.group(2) or "ms"]
    if not math.isfinite(value) or value <= 0:
        raise NasPruneError(f"budget {text!r} must be a positive duration, e.g. 1.8ms")
    return value


def min_latency_architecture(space: ChannelSpace) -> Architecture:
    """Every gene at its narrowest choice: the fastest architecture a table can predict."""
    return Architecture(space.id, {g.name: g.choices[0] for g in space.genes})


@dataclass(frozen=True)
class LatencyBudget:
    """A hard latency constraint: ``table.predict(arch) <= budget_ms``.

    Attributes:
        name: Constraint key in the study (``trial.set_constraint(name, ...)``), e.g. the device.
        table: The latency table of the target device.
        budget_ms: The most milliseconds a feasible architecture may take there.
    """

    name: str
    table: LatencyPredictor
    budget_ms: float

    def predict(self, arch: Architecture) -> float:
        return float(self.table.predict(arch))

    def violation(self, arch: Architecture) -> float:
        """Predicted milliseconds minus the budget (feasible when <= 0, the Optuna convention)."""
        return self.predict(arch) - self.budget_ms

    def feasible(self, arch: Architecture) -> bool:
        return self.violation(arch) <= 0.0

    @staticmethod
    def for_tables(
        tables: Sequence[LatencyPredictor], budgets: Sequence[str | float], *, names: Sequence[str] | None = None
    ) -> list["LatencyBudget"]:
        """Pair tables with budgets: one budget per table, or one budget for every table.

        Constraint names default to the table's device name (``meta["device_name"]``), made unique.
        """
        if not tables:
            raise NasPruneError("a latency-constrained search needs at least one --table")
        if len(budgets) not in (1, len(tables)):
            raise NasPruneError(
                f"{len(tables)} tables but {len(budgets)} budgets: give one --budget per --table (in order) or one for all"
            )
        ms = [parse_milliseconds(b) for b in budgets]
        if len(ms) == 1:
            ms = ms * len(tables)
        out: list[LatencyBudget] = []
        seen: set[str] = set()
        for i, (table, budget) in enumerate(zip(tables, ms)):
            name = names[i] if names else _table_name(table, i)
            base, k = name, 2
            while name in seen:
                name, k = f"{base}#{k}", k + 1
            seen.add(name)
            out.append(LatencyBudget(name, table, budget))
        return out


def _table_name(table: LatencyPredictor, index: int) -> str:
    meta = getattr(table, "meta", None) or {}
    for key in ("device_name", "device", "name"):
        value = meta.get(key) if isinstance(meta, dict) else None
        if value:
            return re.sub(r"[^A-Za-z0-9_.@#-]+", "-", str(value))
    return f"table{index}"
