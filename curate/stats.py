"""The one stats row every stage reports, with the same columns for every stage and run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["StageStats"]


@dataclass
class StageStats:
    """Counts and time of one stage in one run.

    Attributes
    ----------
    stage
        Stage id from the pipeline (``quality``, ``quality#2``); ``convert`` for reading inputs.
    name
        Registered stage name.
    rows_in, rows_added, rows_kept, rows_removed
        Accounting: ``rows_in + rows_added == rows_kept + rows_removed``.
    removed_by_reason
        Rows removed per stable snake_case reason.
    seconds
        Wall time of the stage.
    extra
        Stage-specific values (chosen parameters, distributions); JSON-serialisable.
    """

    stage: str
    name: str
    rows_in: int
    rows_added: int
    rows_kept: int
    rows_removed: int
    removed_by_reason: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def balanced(self) -> bool:
        """True when every row in (or added) is either kept or removed."""
        return self.rows_in + self.rows_added == self.rows_kept + self.rows_removed

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (for JSON lineage)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageStats:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)
