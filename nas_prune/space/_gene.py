"""A gene: one group of coupled channels and the widths it may take."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Gene", "width_choices"]


def width_choices(width: int, *, round_to: int, min_ratio: float, channel_groups: int = 1) -> tuple[list[int], int]:
    """Ordered channel counts a group of ``width`` channels may keep, and their step.

    Multiples of the step from a minimum (``min_ratio`` of the width, at least one step) up to the
    full width, which is always included. The step is ``round_to``, widened to a multiple of
    ``channel_groups`` when a grouped conv needs every group to keep the same count (and to
    ``channel_groups`` itself where that multiple would leave fewer than four choices).
    """
    step = math.lcm(round_to, channel_groups)
    if channel_groups > 1 and width // step < 4:
        step = channel_groups
    lo = max(step, math.ceil(min_ratio * width / step) * step)
    choices = list(range(lo, width, step)) + [width]
    return choices, step


@dataclass(frozen=True)
class Gene:
    """One dimension of the channel search space.

    Attributes:
        name: Unique name (the group's root layer).
        width: Channels of the unpruned model.
        choices: Allowed channel counts, increasing; ``width`` is the last.
        step: Spacing of the choices (the NNI ``q`` and Optuna ``step``).
        members: ``(layer, "in"|"out", channels)`` for every layer whose shape the gene sets.
        fixed: Why the gene cannot be pruned (``None`` when it can).
    """

    name: str
    width: int
    choices: tuple[int, ...]
    step: int
    members: tuple[tuple[str, str, int], ...] = field(default_factory=tuple)
    fixed: str | None = None

    @property
    def searchable(self) -> bool:
        """Whether a search has anything to choose (more than one choice, not fixed)."""
        return self.fixed is None and len(self.choices) > 1

    @property
    def low(self) -> int:
        return self.choices[0]

    @property
    def high(self) -> int:
        """Upper end of the evenly spaced grid that covers the choices (>= width)."""
        return self.low + self.step * math.ceil((self.width - self.low) / self.step)

    def snap(self, value: float) -> int:
        """Nearest choice to ``value`` (ties go to the wider choice)."""
        return min(self.choices, key=lambda c: (abs(c - value), -c))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "width": self.width,
            "step": self.step,
            "choices": list(self.choices),
            "members": [list(m) for m in self.members],
            "fixed": self.fixed,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> "Gene":
        return cls(
            name=str(obj["name"]),
            width=int(obj["width"]),
            choices=tuple(int(c) for c in obj["choices"]),
            step=int(obj["step"]),
            members=tuple((str(m[0]), str(m[1]), int(m[2])) for m in obj["members"]),
            fixed=obj.get("fixed"),
        )
