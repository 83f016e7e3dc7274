"""The default engine: sources are read and every stage's ``apply`` runs in this process."""

from __future__ import annotations

from typing import TYPE_CHECKING

from curate.engines.base import Engine

if TYPE_CHECKING:
    import polars as pl

    from curate.stages.base import Stage, StageContext, StageResult
    from curate.stats import StageStats

__all__ = ["LocalEngine"]


class LocalEngine(Engine):
    """Reads with :func:`curate.formats.read_source` and runs each stage's ``apply`` on the whole
    frame, both in this process."""

    name = "local"

    def run_stage(self, stage: Stage, frame: pl.DataFrame, ctx: StageContext) -> tuple[StageResult, StageStats]:
        return stage.run(frame, ctx)
