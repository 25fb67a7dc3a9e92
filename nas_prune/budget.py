"""Budgets written as text, in one language for every stage, and what predicts a latency.

One unit table and one parser serve the gates (``flops:0.5``, ``params:120M``,
``latency:TABLE:1.8ms``), the search (``--budget 1.8ms`` per ``--table``) and ``nas-prune run``
(``--budget 0.5x``):

- a latency: ``1.8ms``, ``1800us``, ``0.0018s`` (a Python number is milliseconds);
- a fraction of a reference network's latency: ``0.5x`` (the teacher timed now in ``nas-prune
  run``; the unpruned model as the table predicts it in ``search``, ``nni`` and ``gates``);
- a count of FLOPs or parameters: ``120M``, ``3.5k``, or a fraction of the full model (``0.5``).

:class:`LatencyPredictor` is what a budget needs from a latency table
(:class:`nas_prune.latency.LatencyTable` and its :meth:`~nas_prune.latency.LatencyTable.rescaled`
view are two).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Protocol

from nas_prune.errors import NasPruneError

__all__ = ["RELATIVE_HINT", "UNITS", "LatencyLimit", "LatencyPredictor", "parse_count", "parse_milliseconds", "parse_relative"]

#: Every unit a budget may carry: suffix -> (quantity, factor to the quantity's base unit).
#: Durations are converted to milliseconds, counts to a plain number; ``x`` marks a fraction of a
#: reference latency. Count suffixes are case-insensitive (``120M`` = ``120m``).
UNITS: dict[str, tuple[str, float]] = {
    "ms": ("duration", 1.0),
    "us": ("duration", 1e-3),
    "µs": ("duration", 1e-3),
    "s": ("duration", 1e3),
    "x": ("fraction", 1.0),
    "k": ("count", 1e3),
    "m": ("count", 1e6),
    "g": ("count", 1e9),
}

_NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
RELATIVE_HINT = (
    "relative budgets (0.5x) need the reference network's latency: nas-prune run --budget 0.5x (the teacher "
    "measured now), nas-prune search/nni --budget 0.5x (the unpruned model as the table predicts it), or "
    "LatencyBudget.for_tables(tables, ['0.5x'], reference=space.full())"
)
#: What a relative budget is a fraction of, in messages, unless the caller names it.
UNPRUNED = "the unpruned model's latency"


class LatencyPredictor(Protocol):
    """Anything that predicts an architecture's latency in milliseconds.

    :class:`nas_prune.latency.LatencyTable` is one; so is ``table.rescaled(reference_ms)`` (the
    same predictions on the clock of a reference network timed now). A ``meta`` dict with a
    ``device_name``, when present, names the search's latency constraint.
    """

    def predict(self, arch: Any) -> float: ...


def _split(text: str) -> tuple[float, str | None, str]:
    """``" 1.8ms "`` -> ``(1.8, "duration", "ms")``; ``(nan, None, raw)`` when it is not number + unit."""
    raw = str(text).strip()
    m = re.fullmatch(_NUMBER + r"\s*([A-Za-zµ]*)", raw)
    if not m:
        return math.nan, None, raw
    number, unit = float(m.group(1)), m.group(2)
    if not unit:
        return number, "", raw
    known = UNITS.get(unit) or UNITS.get(unit.lower())
    if known is None or (known[0] == "duration" and unit != unit.lower()):
        return math.nan, None, raw  # durations are lower case: 1.8MS is not read as 1.8 ms
    return number * known[1], known[0], raw


@dataclass(frozen=True)
class LatencyLimit:
    """A latency budget: milliseconds (``1.8ms``) or a fraction of a reference network's latency (``0.5x``).

    Attributes:
        value: Milliseconds, or the fraction (in (0, 1]) when ``relative``.
        relative: Whether ``value`` is a fraction of the reference latency.
    """

    value: float
    relative: bool

    @classmethod
    def parse(cls, text: str | float, *, reference: str = UNPRUNED, bare: bool = False) -> "LatencyLimit":
        """Read ``1.8ms``, ``1800us``, ``0.0018s`` or ``0.5x``; a Python number is milliseconds.

        Args:
            text: The budget.
            reference: What ``x`` is a fraction of, for the messages (``"the teacher"``).
            bare: Read a string without a unit (``"2"``) as milliseconds instead of refusing it.

        Raises:
            NasPruneError: not a positive duration or a fraction in (0, 1]; a string without a unit
                (unless ``bare``: was ``0.5`` meant as 0.5 ms or 0.5x?).
        """
        kind: str | None
        if isinstance(text, (int, float)) and not isinstance(text, bool):
            value, kind, raw = float(text), "duration", str(text)
        else:
            value, kind, raw = _split(str(text))
        if kind == "" and bare:
            kind = "duration"
        if kind == "":
            raise NasPruneError(f"budget {text!r} has no unit: write {raw}ms (milliseconds), {raw}us, {raw}s "
                                f"or {raw}x (a fraction of {reference})")
        if kind == "fraction":
            if not math.isfinite(value) or value <= 0 or value > 1:
                raise NasPruneError(f"budget {text!r} must be a fraction in (0, 1] of {reference}, such as 0.5x")
            return cls(value, True)
        if kind != "duration":
            raise NasPruneError(f"budget {text!r} is not a duration: write it like 1.8ms, 1800us or 0.0018s "
                                f"(or 0.5x, a fraction of {reference})")
        if not math.isfinite(value) or value <= 0:
            raise NasPruneError(f"budget {text!r} must be a positive duration, e.g. 1.8ms")
        return cls(value, False)

    def to_ms(self, reference_ms: float) -> float:
        """Milliseconds: the value itself, or the fraction of ``reference_ms``.

        Raises:
            NasPruneError: a relative budget and a reference latency that is not positive.
        """
        if not self.relative:
            return self.value
        if not math.isfinite(reference_ms) or reference_ms <= 0:
            raise NasPruneError(f"reference latency {reference_ms!r} ms is not positive: pass the reference "
                                "network (space.full()) or its measured milliseconds")
        return self.value * float(reference_ms)

    def __str__(self) -> str:
        return f"{self.value:g}x" if self.relative else f"{self.value:g}ms"


def parse_milliseconds(text: str | float) -> float:
    """``"1.8ms"``, ``"1800us"`` or ``"0.0018s"`` -> milliseconds; a Python number is milliseconds.

    A string needs its unit: ``"0.5"`` is refused (was it 0.5 ms or 0.5x?).

    Raises:
        NasPruneError: not a positive finite duration, a string without a unit, or a relative budget.
    """
    if isinstance(text, str) and _split(text)[1] == "fraction":
        raise NasPruneError(f"budget {text!r} is relative, not a duration: {RELATIVE_HINT}")
    return LatencyLimit.parse(text).value


def parse_relative(text: str | float, *, reference: str = UNPRUNED) -> float | None:
    """The fraction of a relative budget (``"0.5x"`` -> 0.5), or ``None`` for anything else.

    Raises:
        NasPruneError: a fraction that is not in (0, 1].
    """
    if not isinstance(text, str) or _split(text)[1] != "fraction":
        return None
    return LatencyLimit.parse(text, reference=reference).value


def parse_count(text: str) -> float:
    """A FLOPs or parameter budget: ``"0.5"`` (a fraction of the full model), ``"120M"``, ``"3.5k"``, ``"2G"``.

    Returns the number as written (a value <= 1 is a fraction; the caller resolves it).

    Raises:
        NasPruneError: not a positive number with an optional k/M/G suffix.
    """
    value, kind, _ = _split(text)
    if kind not in ("", "count") or not math.isfinite(value) or value <= 0:
        raise NasPruneError(f"{text!r} is not a positive count: write 0.5 (a fraction of the full model) or 120M")
    return value
