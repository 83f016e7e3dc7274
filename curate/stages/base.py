"""The stage API: a pydantic config model plus a small class with one ``apply``.

A stage receives the whole frame (record columns plus ``split``) and returns a
:class:`StageResult`: the rows it keeps and the rows it removes, each removed row with a
stable snake_case ``reason`` and a JSON ``detail``. :meth:`Stage.run` times every stage,
counts rows into one :class:`curate.stats.StageStats` row and wraps failures with the stage id
and pipeline; an engine (:mod:`curate.engines`) only decides where ``apply`` runs. Stages never
drop a row silently.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import polars as pl
from pydantic import BaseModel, ConfigDict

from curate.errors import CurateError, StageError
from curate.stats import StageStats

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.progress import Progress

    from curate.store import Store

__all__ = ["Stage", "StageConfig", "StageContext", "StageResult", "detail_json"]

T = TypeVar("T")


class StageConfig(BaseModel):
    """Base of every stage's config: unknown keys are errors, so typos fail at load time."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class StageContext:
    """What a stage may use besides its frame. Nothing here is global state.

    Attributes
    ----------
    dataset
        Name of the dataset the run writes (the pipeline's ``output``).
    kind
        Record kind of the frame (``sft``, ``preference``, ``prompt``, ``feedback``): the
        sources' kind, or the kind an earlier stage changed it to (:attr:`StageResult.kind`).
    base_dir
        Folder of the pipeline file; relative paths in stage configs resolve against it.
    store
        The dataset store (for caches such as embeddings, and for reading other versions).
    stage_id
        The id of the running stage in the pipeline (``quality``, or ``quality#2`` when repeated).
    progress
        A rich progress display owned by the runner, or ``None`` when running quietly.
    benchmarks_dir
        Folder of benchmark files given by the caller (CLI ``--benchmarks`` / ``CURATE_BENCHMARKS``);
        ``None`` lets stages fall back to their own config or defaults.
    env
        Environment variables the caller passes on (the CLI passes the process environment).
        Stages that connect to services (``label``: Argilla) read credentials here, through
        :class:`curate.credentials.Credentials`, never from ``os.environ``.
    pipeline
        Path of the pipeline file, named in error messages; empty when a stage runs on its own.
    """

    dataset: str
    kind: str
    base_dir: Path
    store: Store | None = None
    stage_id: str = ""
    progress: Progress | None = None
    benchmarks_dir: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    pipeline: str = ""

    def track(self, items: Iterable[T], *, description: str, total: int | None = None) -> Iterator[T]:
        """Iterate ``items`` with a progress bar when a display is attached."""
        if self.progress is None:
            yield from items
            return
        task = self.progress.add_task(f"{self.stage_id}: {description}", total=total)
        try:
            for item in items:
                yield item
                self.progress.advance(task)
        finally:
            self.progress.remove_task(task)


def detail_json(**values: Any) -> str:
    """Encode a removal detail as compact JSON (used for per-row ``detail``)."""
    return json.dumps(values, ensure_ascii=False, sort_keys=True, default=str)


@dataclass
class StageResult:
    """What a stage returns.

    Attributes
    ----------
    kept
        Rows that go on, with the input's columns (a stage may add score columns).
    removed
        Rows removed, with the input's columns plus ``reason`` (stable snake_case) and
        ``detail`` (JSON text naming the rule / value / matched row, or null).
    stats
        Stage-specific extras (JSON-serialisable): chosen parameters, label distributions...
    added
        Rows the stage created (e.g. upsampling); accounting is in + added = kept + removed.
    kind
        Record kind of ``kept`` when it differs from the input's (``generate`` turns ``sft`` or
        ``prompt`` rows into ``preference`` rows); ``None``: the input's kind. ``removed`` always
        keeps the input's columns. The runner passes the new kind to later stages, commits it
        and records the change in the lineage.
    """

    kept: pl.DataFrame
    removed: pl.DataFrame
    stats: dict[str, Any] = field(default_factory=dict)
    added: int = 0
    kind: str | None = None

    @classmethod
    def partition(
        cls,
        frame: pl.DataFrame,
        keep: pl.Series | pl.Expr,
        *,
        reason: str | pl.Expr,
        detail: pl.Expr | None = None,
        stats: dict[str, Any] | None = None,
    ) -> StageResult:
        """Split ``frame`` by a boolean mask; rows where it is false are removed with ``reason``."""
        mask = keep if isinstance(keep, pl.Expr) else pl.lit(keep)
        tagged = frame.with_columns(
            __keep=mask.fill_null(False),
            reason=reason if isinstance(reason, pl.Expr) else pl.lit(reason),
            detail=(detail if detail is not None else pl.lit(None)).cast(pl.String),
        )
        kept = tagged.filter(pl.col("__keep")).drop("__keep", "reason", "detail")
        removed = tagged.filter(~pl.col("__keep")).drop("__keep")
        return cls(kept=kept, removed=removed.with_columns(pl.col("reason").cast(pl.String)), stats=stats or {})


class Stage(ABC):
    """Base class of every stage. Subclasses set ``name`` and ``Config`` and implement ``apply``.

    Register a subclass with :func:`curate.stages.registry.register` so pipelines can name it.
    ``accepts`` lists the record kinds the stage reads (``None``: any) and ``produces`` the kind
    its kept rows have when it changes it; the pipeline loader checks that the stages' kinds fit.
    """

    name: ClassVar[str]
    Config: ClassVar[type[StageConfig]]
    accepts: ClassVar[tuple[str, ...] | None] = None
    produces: ClassVar[str | None] = None

    def __init__(self, config: StageConfig) -> None:
        self.config = config

    @abstractmethod
    def apply(self, frame: pl.DataFrame, ctx: StageContext) -> StageResult:
        """Return the kept and removed rows of ``frame``."""

    def run(
        self,
        frame: pl.DataFrame,
        ctx: StageContext,
        *,
        apply: Callable[[pl.DataFrame, StageContext], StageResult] | None = None,
    ) -> tuple[StageResult, StageStats]:
        """Apply the stage to ``frame`` and return its result with its stats row.

        Parameters
        ----------
        frame
            The rows the stage receives.
        ctx
            The run's context; ``ctx.stage_id`` keys the stats row.
        apply
            Where ``apply`` runs, e.g. an engine's distributed version of it; ``None``: this
            process (``self.apply``). It must return what ``self.apply`` would.

        Raises
        ------
        StageError
            The stage failed with anything but a :class:`curate.errors.CurateError`; the message
            names the stage id, the rows and the pipeline, and says nothing was committed.
        """
        start = time.perf_counter()
        try:
            result = (apply or self.apply)(frame, ctx)
        except CurateError:
            raise
        except Exception as exc:
            where = f" of pipeline {ctx.pipeline}" if ctx.pipeline else ""
            raise StageError(
                f"Stage {ctx.stage_id or self.name!r} failed on {frame.height} {ctx.kind} rows{where}: "
                f"{type(exc).__name__}: {exc}. Nothing was committed; {ctx.dataset!r} is unchanged."
            ) from exc
        stats = StageStats.from_result(
            result, stage=ctx.stage_id or self.name, name=self.name, rows_in=frame.height,
            seconds=time.perf_counter() - start,
        )
        return result, stats
