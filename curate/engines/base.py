"""The engine interface: one method that runs one stage on one frame."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    import polars as pl

    from curate.stages.base import Stage, StageContext, StageResult
    from curate.stats import StageStats

__all__ = ["Engine"]


class Engine(ABC):
    """Where stages run. ``name`` is recorded in the version's lineage."""

    name: ClassVar[str]

    @abstractmethod
    def run_stage(self, stage: Stage, frame: pl.DataFrame, ctx: StageContext) -> tuple[StageResult, StageStats]:
        """Run ``stage`` on ``frame`` through :meth:`Stage.run`, choosing where ``apply`` runs."""
