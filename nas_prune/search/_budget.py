"""Latency budgets: one latency table (a target device) and the most milliseconds it may predict."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

from nas_prune.errors import NasPruneError
from nas_prune.space import Architecture, ChannelSpace

__all__ = ["LatencyBudget", "LatencyPredictor", "parse_milliseconds", "parse_relative", "check_budget_texts",
           "min_latency_architecture"]

_UNITS = {"ms": 1.0, "us": 1e-3, "µs": 1e-3, "s": 1e3}


class LatencyPredictor(Protocol):
    """What a search needs from a latency table (:class:`nas_prune.latency.LatencyTable`)."""

    meta: dict[str, Any]

    def predict(self, arch: Architecture) -> float:  # milliseconds
        ...


_NUMBER = r"([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
_RELATIVE_HINT = (
    "relative budgets (0.5x) need the reference network's latency: nas-prune run --budget 0.5x (the teacher "
    "measured now), nas-prune search/nni --budget 0.5x (the unpruned model as the table predicts it), or "
    "LatencyBudget.for_tables(tables, ['0.5x'], reference=space.full())"
)


def parse_milliseconds(text: str | float) -> float:
    """``"1.8ms"``, ``"1800us"`` or ``"0.0018s"`` -> milliseconds; a Python number is milliseconds.

    A string needs its unit: ``"0.5"`` is refused (was it 0.5 ms or 0.5x?).

    Raises:
        NasPruneError: not a positive finite duration, a string without a unit, or a relative budget.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        raw = str(text).strip()
        if re.fullmatch(_NUMBER, raw):
            raise NasPruneError(f"budget {text!r} has no unit: write {raw}ms (milliseconds), {raw}us, {raw}s "
                                f"or {raw}x (a fraction of the unpruned model's latency)")
        if re.fullmatch(_NUMBER + r"\s*x", raw):
            raise NasPruneError(f"budget {text!r} is relative, not a duration: {_RELATIVE_HINT}")
        m = re.fullmatch(_NUMBER + r"\s*(ms|us|µs|s)", raw)
        if not m:
            raise NasPruneError(f"budget {text!r} is not a duration: write it like 1.8ms, 1800us or 0.0018s "
                                "(or 0.5x, a fraction of the unpruned model's latency)")
        value = float(m.group(1)) * _UNITS[m.group(2)]
    if not math.isfinite(value) or value <= 0:
        raise NasPruneError(f"budget {text!r} must be a positive duration, e.g. 1.8ms")
    return value


def parse_relative(text: str | float) -> float | None:
    """The fraction of a relative budget (``"0.5x"`` -> 0.5), or ``None`` for an absolute one.

    Raises:
        NasPruneError: a fraction that is not in (0, 1].
    """
    if not isinstance(text, str):
        return None
    m = re.fullmatch(r"\s*" + _NUMBER + r"\s*x\s*", text)
    if not m:
        return None
    value = float(m.group(1))
    if not math.isfinite(value) or value <= 0 or value > 1:
        raise NasPruneError(f"budget {text!r} must be a fraction in (0, 1] of the reference latency, such as 0.5x")
    return value


def check_budget_texts(budgets: Sequence[str | float]) -> None:
    """Refuse budgets that are neither durations nor fractions (before any file is loaded).

    Raises:
        NasPruneError: the first budget that is not understood (e.g. a number without a unit).
    """
    for b in budgets:
        if parse_relative(b) is None:
            parse_milliseconds(b)


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
        tables: Sequence[LatencyPredictor],
        budgets: Sequence[str | float],
        *,
        names: Sequence[str] | None = None,
        reference: Architecture | float | None = None,
    ) -> list["LatencyBudget"]:
        """Pair tables with budgets: one budget per table, or one budget for every table.

        A budget is a duration (``"1.8ms"``, ``"1800us"``, a number of milliseconds) or a fraction
        of a reference latency (``"0.5x"``). The reference is an architecture whose latency each
        table predicts (``space.full()``: the unpruned model, the usual choice) or milliseconds
        measured elsewhere (the same for every table).

        Constraint names default to the table's device name (``meta["device_name"]``), made unique.

        Example::

            budgets = LatencyBudget.for_tables([table], ["0.5x"], reference=space.full())

        Raises:
            NasPruneError: no table, budgets that do not pair with the tables, a budget that is
                not understood, or a relative budget without ``reference``.
        """
        if not tables:
            raise NasPruneError("a latency-constrained search needs at least one --table")
        if len(budgets) not in (1, len(tables)):
            raise NasPruneError(
                f"{len(tables)} tables but {len(budgets)} budgets: give one --budget per --table (in order) or one for all"
            )
        if len(budgets) == 1:
            budgets = list(budgets) * len(tables)
        ms: list[float] = []
        for table, b in zip(tables, budgets):
            fraction = parse_relative(b)
            if fraction is None:
                ms.append(parse_milliseconds(b))
            elif reference is None:
                raise NasPruneError(f"budget {b!r} is relative but no reference was given: {_RELATIVE_HINT}")
            else:
                ref_ms = float(reference) if isinstance(reference, (int, float)) else float(table.predict(reference))
                if not math.isfinite(ref_ms) or ref_ms <= 0:
                    raise NasPruneError(f"reference latency {ref_ms!r} ms is not positive: pass the reference "
                                        "network (space.full()) or its measured milliseconds")
                ms.append(fraction * ref_ms)
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
