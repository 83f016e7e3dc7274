"""Row stages on Ray: ``apply`` on each block in ``map_batches``, the blocks' results merged in order."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

import polars as pl

from curate.engines.ray._blocks import collect, to_dataset
from curate.stages.base import StageResult

if TYPE_CHECKING:
    import pyarrow as pa

    from curate.stages.base import Stage, StageContext

__all__ = ["map_rows", "merge_stats"]

_REMOVED, _STATS = "__removed", "__stats"


def _apply_block(block: pa.Table, *, stage_ref: Any, ctx: StageContext) -> pa.Table:
    """One block: the stage's kept and removed rows, flagged, and its stats on the first row."""
    import ray

    stage: Stage = ray.get(stage_ref)  # shipped once through the object store, read from shared memory
    result = stage.apply(pl.from_arrow(block), ctx)
    kept = result.kept.with_columns(**{_REMOVED: pl.lit(False), "reason": pl.lit(None, pl.String),
                                       "detail": pl.lit(None, pl.String)})
    out = pl.concat([kept, result.removed.with_columns(**{_REMOVED: pl.lit(True)})], how="diagonal_relaxed")
    stats = [json.dumps(result.stats, default=str)] + [None] * (out.height - 1)
    return out.with_columns(pl.Series(_STATS, stats, dtype=pl.String)).to_arrow()


def merge_stats(parts: list[dict]) -> dict:
    """Stats of several blocks as one: numbers add up, nested dicts merge, anything else is the first block's."""
    merged: dict = {}
    for part in parts:
        for key, value in part.items():
            if key not in merged:
                merged[key] = value
            elif isinstance(value, dict) and isinstance(merged[key], dict):
                merged[key] = merge_stats([merged[key], value])
            elif isinstance(value, int | float) and not isinstance(value, bool):
                merged[key] = merged[key] + value
    return merged


def map_rows(stage: Stage, frame: pl.DataFrame, ctx: StageContext) -> StageResult:
    """``stage.apply`` on every block of ``frame`` in ``map_batches``; the same result as on the whole
    frame for a stage that judges each row on its own (``quality``). Kept rows keep their order;
    removed rows come in block order."""
    import ray

    worker_ctx = dataclasses.replace(ctx, progress=None)  # a progress display stays on the driver
    out = collect(to_dataset(frame).map_batches(
        _apply_block, batch_format="pyarrow", batch_size=None, zero_copy_batch=True,
        fn_kwargs={"stage_ref": ray.put(stage), "ctx": worker_ctx},
    ))
    stats = merge_stats([json.loads(s) for s in out[_STATS].drop_nulls()])
    removed_mask = out[_REMOVED]
    kept = out.filter(~removed_mask).drop(_REMOVED, _STATS, "reason", "detail")
    removed = out.filter(removed_mask).drop(_REMOVED, _STATS)
    return StageResult(kept=kept, removed=removed, stats=stats)
