"""The engine interface: how a pipeline's sources are read, and where one stage runs on one frame."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

from curate.engines.inputs import Inputs, read_inputs
from curate.formats import read_source

if TYPE_CHECKING:
    from pathlib import Path

    import polars as pl

    from curate.config import SourceConfig
    from curate.formats import SourceRows
    from curate.stages.base import Stage, StageContext, StageResult
    from curate.stats import StageStats
    from curate.store import Store

__all__ = ["Engine"]


class Engine(ABC):
    """Where stages run. ``name`` is recorded in the version's lineage."""

    name: ClassVar[str]

    def read(self, sources: list[SourceConfig], *, base_dir: Path, store: Store) -> Inputs:
        """Every source of a pipeline: stored versions from ``store``, files through :meth:`read_files`."""
        return read_inputs(sources, base_dir=base_dir, store=store, read_files=self.read_files)

    def read_files(self, source: SourceConfig, base_dir: Path) -> SourceRows:
        """The files of one source (``path`` relative to ``base_dir``); by default
        :func:`curate.formats.read_source` in this process."""
        return read_source(source, base_dir=base_dir)

    @abstractmethod
    def run_stage(self, stage: Stage, frame: pl.DataFrame, ctx: StageContext) -> tuple[StageResult, StageStats]:
        """Run ``stage`` on ``frame`` through :meth:`Stage.run`, choosing where ``apply`` runs."""
