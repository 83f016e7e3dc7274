"""Run a pipeline file: read sources and apply stages on an engine (local by default), commit one version."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from curate import __version__
from curate.config import PipelineConfig, load_pipeline, stage_kinds_problem
from curate.engines import get_engine
from curate.engines.inputs import file_sha256
from curate.errors import ConfigError, StageError
from curate.records import SCHEMAS
from curate.stage_cache import StageCache, cache_dir, input_fingerprint
from curate.stages import StageContext, get_stage
from curate.stats import StageStats
from curate.store import Store

__all__ = ["RunSummary", "run_pipeline"]

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    """What one run committed."""

    dataset: str
    version: int
    kind: str
    stages: list[StageStats]
    rows_per_split: dict[str, int]
    seconds: float


def _check_new_kind(kind: str, kept: pl.DataFrame, *, stage_id: str, previous: str) -> None:
    """A stage that changes the record kind must return rows with the new kind's columns."""
    missing = [c for c in SCHEMAS.get(kind, {}) if c not in kept.columns]
    if kind not in SCHEMAS or missing:
        problem = f"lacks the columns {', '.join(missing)}" if kind in SCHEMAS else f"names no kind of {', '.join(SCHEMAS)}"
        raise StageError(
            f"Stage {stage_id!r} turned {previous} rows into {kind!r} rows, but its result {problem}. "
            "This is a bug in the stage; nothing was committed."
        )


def _progress(console: Console | None) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=console is None,
    )


def run_pipeline(
    path: str | Path,
    *,
    store_root: str | Path,
    benchmarks_dir: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    console: Console | None = None,
    config: PipelineConfig | None = None,
    engine: str | None = None,
    address: str | None = None,
    resume: bool = False,
) -> RunSummary:
    """Run the pipeline file ``path`` and commit one new version of its output dataset.

    Parameters
    ----------
    path
        Pipeline YAML. Relative paths inside it resolve against its folder.
    store_root
        Root of the dataset store.
    benchmarks_dir
        Folder of benchmark files for stages that need them (``decontaminate``) when their own
        config names none; ``None`` lets them look for a ``shared/data`` folder above the pipeline.
    env
        Environment variables stages may read credentials from (``label`` reads
        ``ARGILLA_API_URL`` / ``ARGILLA_API_KEY``); the CLI passes ``os.environ``. ``None``: none.
    console
        Where progress bars go; ``None`` runs quietly.
    config
        ``path`` as :func:`curate.config.load_pipeline` already loaded it (``curate run`` loads
        the file once); ``None`` loads it here.
    engine
        Where stages run, ``local`` or ``ray`` (see :mod:`curate.engines`); ``None``: the
        pipeline's ``engine`` field.
    address
        Ray cluster address for ``engine: ray``; ``None``: the pipeline's ``ray_address``, else a
        local cluster.
    resume
        Reuse the cached results of the stages a failed or killed run of the same inputs and
        config finished (``<store>/_cache/stages``, see :mod:`curate.stage_cache`), each
        announced on ``console``. Every run writes that cache; a committed run deletes what it used.

    Raises
    ------
    ConfigError, InputError
        Bad pipeline file or input, before any stage runs; nothing is committed.
    StageError
        A stage failed; nothing is committed and the previous version stays latest.
    StoreError
        The store cannot be written, or another run committed the output dataset while this
        one was writing; nothing is committed. ``RunSummary.version`` is always this run's own.
    """
    started = time.perf_counter()
    path = Path(path)
    config = config or load_pipeline(path)
    specs = config.stage_specs()  # validated at load; resolve classes before reading any data
    stage_classes = [get_stage(spec.name) for spec in specs]
    store = Store(store_root)
    base_dir = path.parent
    stage_engine = get_engine(engine or config.engine, address=address or config.ray_address)

    t0 = time.perf_counter()
    inputs = stage_engine.read(config.sources, base_dir=base_dir, store=store)
    kind = inputs.kind
    if problem := stage_kinds_problem(kind, specs):
        raise ConfigError(f"{path}: {problem}. No stage ran; nothing was committed.")
    convert = inputs.convert_stats(seconds=time.perf_counter() - t0)
    stats = [convert]
    kind_changes: list[dict[str, str]] = []
    removed = [inputs.invalid.with_columns(removed_by=pl.lit("convert"))]
    frame = inputs.valid.with_columns(split=pl.lit(None, pl.String))
    fingerprint = input_fingerprint(
        files=inputs.files, parents=inputs.parents, sources=config.sources, kind=kind, benchmarks_dir=benchmarks_dir
    )
    cache = StageCache(cache_dir(store.root), previous=fingerprint, resume=resume, console=console)
    inputs.valid = inputs.valid.clear()  # `frame` holds the rows now: they are freed once a stage replaces it

    with _progress(console) as progress:
        for spec, cls in zip(specs, stage_classes, strict=True):
            ctx = StageContext(
                dataset=config.output,
                kind=kind,
                base_dir=base_dir,
                store=store,
                stage_id=spec.id,
                progress=progress,
                benchmarks_dir=Path(benchmarks_dir) if benchmarks_dir else None,
                env=dict(env or {}),
                pipeline=str(path),
            )
            result, stage_stats = cache.run(stage_engine.run_stage, cls(spec.config), frame, ctx, spec=spec)
            stats.append(stage_stats)
            removed.append(result.removed.with_columns(removed_by=pl.lit(spec.id)))
            frame = result.kept
            if result.kind is not None and result.kind != kind:
                _check_new_kind(result.kind, frame, stage_id=spec.id, previous=kind)
                kind_changes.append({"stage": spec.id, "from": kind, "to": result.kind})
                kind = result.kind
            log.info("%s: %d in, %d kept, %d removed", spec.id, stats[-1].rows_in, result.kept.height, result.removed.height)

    all_removed = pl.concat(removed, how="diagonal_relaxed")
    if "split" in all_removed.columns:
        all_removed = all_removed.drop("split")
    lineage = {
        "pipeline": {"path": str(path), "name": config.name or config.output, "sha256": file_sha256(path)},
        "parents": inputs.parents,
        "inputs": inputs.files,
        "curate_version": __version__,
        "engine": stage_engine.name,
        "kind_changes": kind_changes,  # e.g. generate: sft -> preference; removed rows keep their own columns
    }
    version = store.commit(config.output, kind=kind, kept=frame, removed=all_removed, stages=stats, lineage=lineage)
    cache.forget_used()
    splits = frame.get_column("split").fill_null("train").value_counts().sort("split").iter_rows()
    return RunSummary(
        dataset=config.output,
        version=version,
        kind=kind,
        stages=stats,
        rows_per_split=dict(splits),
        seconds=time.perf_counter() - started,
    )

