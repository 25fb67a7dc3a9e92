"""An architecture: one channel count per gene of a space."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from nas_prune._io import read_json, write_json
from nas_prune.errors import InvalidArchitectureError, InvalidFileError, SpaceMismatchError

__all__ = ["Architecture"]


@dataclass(frozen=True)
class Architecture:
    """A point of a :class:`~nas_prune.space.ChannelSpace`.

    JSON form: ``{"space": <space id>, "channels": {gene: count}}``. Genes left out keep their
    full width.
    """

    space: str
    channels: Mapping[str, int] = field(default_factory=dict)
    #: The file it was loaded from (named in validation errors); not part of its identity.
    source: str | None = field(default=None, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"space": self.space, "channels": dict(self.channels)}

    def save(self, path: str | os.PathLike[str]) -> Path:
        return write_json(path, self.to_json())

    @classmethod
    def from_json(cls, obj: Any, *, source: str = "architecture") -> "Architecture":
        if not isinstance(obj, dict) or not isinstance(obj.get("space"), str) or not isinstance(obj.get("channels"), dict):
            raise InvalidFileError(
                f"{source} is not an architecture: expected {{\"space\": ID, \"channels\": {{gene: count}}}}"
            )
        channels: dict[str, int] = {}
        for gene, count in obj["channels"].items():
            if isinstance(count, bool) or not isinstance(count, (int, float)) or int(count) != count:
                raise InvalidArchitectureError(
                    f"{source}: gene {gene!r} has channel count {count!r}, not an integer: fix the file"
                )
            channels[str(gene)] = int(count)
        return cls(obj["space"], channels)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "Architecture":
        arch = cls.from_json(read_json(path, what="architecture"), source=f"architecture {path}")
        return cls(arch.space, arch.channels, source=str(path))

    @property
    def where(self) -> str:
        """``architecture FILE`` when loaded from a file, else ``architecture`` (for error messages)."""
        return f"architecture {self.source}" if self.source else "architecture"

    def check_space(self, space_id: str) -> None:
        if self.space != space_id:
            raise SpaceMismatchError(
                f"{self.where} is for space {self.space!r}, not {space_id!r}: use an architecture of this space"
            )
