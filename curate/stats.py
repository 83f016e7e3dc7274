"""The one stats row every stage reports, with the same columns for every stage and run."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from curate.stages.base import StageResult

__all__ = ["Phases", "StageStats"]


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
    def from_result(cls, result: StageResult, *, stage: str, name: str, rows_in: int, seconds: float) -> StageStats:
        """The stats row of one stage from what it returned.

        Parameters
        ----------
        result
            The stage's :class:`curate.stages.base.StageResult`.
        stage, name
            Stage id from the pipeline and registered stage name.
        rows_in
            Rows the stage received.
        seconds
            Wall time of the stage, measured by its caller (:meth:`curate.stages.base.Stage.run`).
        """
        reasons = result.removed.group_by("reason").len().sort("reason").iter_rows() if result.removed.height else []
        return cls(
            stage=stage,
            name=name,
            rows_in=rows_in,
            rows_added=result.added,
            rows_kept=result.kept.height,
            rows_removed=result.removed.height,
            removed_by_reason=dict(reasons),
            seconds=seconds,
            extra=result.stats,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageStats:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


class Phases:
    """Seconds per named phase of one stage (``signatures``, ``lsh``...), for its ``stats``.

    Example
    -------
    >>> phases = Phases()
    >>> with phases("embed"):
    ...     pass
    >>> list(phases.rounded())
    ['embed']
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def rounded(self, digits: int = 3) -> dict[str, float]:
        """The phases' seconds rounded to ``digits`` (as stages report them)."""
        return {k: round(v, digits) for k, v in self.seconds.items()}
