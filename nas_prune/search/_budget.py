"""Latency budgets: one latency table (a target device) and the most milliseconds it may predict."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from nas_prune.budget import RELATIVE_HINT, LatencyLimit, LatencyPredictor, parse_milliseconds, parse_relative
from nas_prune.errors import NasPruneError
from nas_prune.space import Architecture, ChannelSpace, smallest

# The budget language itself lives in nas_prune.budget; its parsers are re-exported here for searches.
__all__ = ["LatencyBudget", "LatencyPredictor", "parse_milliseconds", "parse_relative", "check_budget_texts",
           "min_latency_architecture"]


def check_budget_texts(budgets: Sequence[str | float]) -> None:
    """Refuse budgets that are neither durations nor fractions (before any file is loaded).

    Raises:
        NasPruneError: the first budget that is not understood (e.g. a number without a unit).
    """
    for b in budgets:
        LatencyLimit.parse(b)


def min_latency_architecture(space: ChannelSpace) -> Architecture:
    """Every gene at its narrowest choice: the fastest architecture a table can predict."""
    return smallest(space)


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
        budgets: Sequence[str | float | LatencyLimit],
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
            limit = b if isinstance(b, LatencyLimit) else LatencyLimit.parse(b)  # parsed already: taken as is
            if limit.relative and reference is None:
                raise NasPruneError(f"budget {b!r} is relative but no reference was given: {RELATIVE_HINT}")
            if limit.relative:
                ref = reference if isinstance(reference, (int, float)) else table.predict(reference)
                ms.append(limit.to_ms(float(ref)))
            else:
                ms.append(limit.value)
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
