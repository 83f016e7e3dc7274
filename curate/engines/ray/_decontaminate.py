"""``decontaminate`` on Ray: the benchmark probe in ``map_batches``, everything frame-global on the driver.

The driver splits the frame into turns and ships them in blocks of the stage's ``batch_rows``
turns (the local batches, so candidates come in the local order), with the index's lookup tables
put in the object store once. Each block is probed with :func:`probe_batch`, the local code, and
returns its candidate matches as one row. The driver merges the blocks' finds with :func:`merge`
and :meth:`Decontaminate.apply` goes on as locally: n-grams in more than ``max_train_rows`` rows of
the whole frame dropped, rare words counted over the whole frame, judging, the held-out check.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from curate.engines.ray._blocks import collect
from curate.stages._decontam_match import Part, counted_turns, lookup_of, merge, probe_batch

if TYPE_CHECKING:
    import pyarrow as pa

    from curate.stages._decontam_index import BenchmarkIndex
    from curate.stages._decontam_match import Probe, Turns
    from curate.stages._ngrams import Normalisation
    from curate.stages.base import StageContext, StageResult
    from curate.stages.decontaminate import Decontaminate

__all__ = ["decontaminate"]

logger = logging.getLogger(__name__)

_PARTS = ("hits", "exact", "df")  # the frames of a Part, one list-of-struct cell each


def _probe_block(block: pa.Table, *, lookup_ref: Any, normalisation: Normalisation) -> pa.Table:
    """(turn, text, counted) -> one row: the block's hits, exact hits and word counts, and its turn lengths."""
    import ray

    part = probe_batch(pl.from_arrow(block["text"]), ray.get(lookup_ref), first_turn=block["turn"][0].as_py(),
                       counted=block["counted"].to_numpy(), normalisation=normalisation)
    cells = {name: getattr(part, name).to_struct(name).implode() for name in _PARTS}
    return pl.DataFrame({**cells, "lengths": pl.Series([part.lengths], dtype=pl.List(pl.Int64))}).to_arrow()


def _part(out: pl.DataFrame, i: int) -> Part:
    """The :class:`Part` of block ``i`` from the collected rows."""
    frames = {name: out[name][i].struct.unnest() for name in _PARTS}
    return Part(**frames, lengths=out["lengths"][i].to_numpy())


def _probe_on_ray(turns: Turns, index: BenchmarkIndex, *, batch_rows: int, normalisation: Normalisation,
                  max_rows: int | None, blocks: list[int], **_: object) -> Probe:
    """:func:`curate.stages._decontam_match.probe`, its batches probed on the cluster; the number of
    blocks is appended to ``blocks``."""
    import ray
    import ray.data

    counted = counted_turns(turns)
    if not len(counted):
        return merge([], turns, counted=counted, max_rows=max_rows, normalisation=normalisation)
    table = pl.DataFrame({"turn": np.arange(len(turns.text), dtype=np.int64), "text": turns.text, "counted": counted})
    starts = range(0, table.height, batch_rows)
    dataset = ray.data.from_arrow([table.slice(lo, batch_rows).to_arrow() for lo in starts])
    out = collect(dataset.map_batches(
        _probe_block, batch_format="pyarrow", batch_size=None, zero_copy_batch=True,
        fn_kwargs={"lookup_ref": ray.put(lookup_of(index)), "normalisation": normalisation},
    ))
    blocks.append(len(starts))
    parts = [_part(out, i) for i in range(out.height)]
    return merge(parts, turns, counted=counted, max_rows=max_rows, normalisation=normalisation)


def decontaminate(stage: Decontaminate, frame: pl.DataFrame, ctx: StageContext) -> StageResult:
    """``stage.apply`` with the benchmark probe run on the cluster; the local result, with the number
    of probed blocks under ``ray_blocks`` in the stats."""
    blocks: list[int] = []
    result = stage.apply(frame, ctx, probe_with=partial(_probe_on_ray, blocks=blocks))
    if blocks:
        result.stats["ray_blocks"] = blocks[0]
        logger.info("decontaminate: probed the benchmark n-grams in %d Ray blocks", blocks[0])
    return result
