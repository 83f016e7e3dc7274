"""``dedup_minhash`` on Ray: signatures in ``map_batches``, LSH band buckets through ``groupby``.

The signatures and the band keys are the local stage's own functions, and the candidate pairs are
the ones :func:`curate.stages._minhash_lsh.band_pairs` finds (each bucket member paired with the
bucket's lowest row), so verification, connected components and the keep rule -- run on the
driver by :meth:`DedupMinhash.finish` -- give the local result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pyarrow as pa

from curate.engines.ray._blocks import collect, to_dataset
from curate.stages._minhash_lsh import band_keys, has_tokens, unique_pairs
from curate.stats import Phases

if TYPE_CHECKING:
    from curate.stages.base import StageContext, StageResult
    from curate.stages.dedup_minhash import DedupMinhash

__all__ = ["minhash"]

BUCKETS = 64  # groups per band: keys are spread over band x bucket groups so no group holds a whole band


def _signatures(batch: pa.Table, *, stage: DedupMinhash) -> pa.Table:
    sig = stage.hasher().signatures(pl.from_arrow(batch["text"]))  # (n, num_perm) uint32
    return pa.table({"row": batch["row"], "sig": pa.FixedSizeListArray.from_arrays(pa.array(sig.ravel()), sig.shape[1])})


def _sig_matrix(table: pa.Table) -> np.ndarray:
    column = table["sig"].combine_chunks()
    return column.flatten().to_numpy().reshape(len(column), column.type.list_size)


def _band_rows(batch: pa.Table, *, bands: int, rows: int, seed: int) -> dict[str, np.ndarray]:
    """One output row per (row with tokens, band): the band, its key's bucket and the key."""
    sig = _sig_matrix(batch)
    live = has_tokens(sig)
    keys = band_keys(sig[live], bands=bands, rows=rows, seed=seed)  # (n, bands)
    row = np.repeat(batch["row"].to_numpy()[live], bands)
    key = keys.ravel()
    return {"band": np.tile(np.arange(bands), len(keys)), "bucket": (key % np.uint64(BUCKETS)).astype(np.int64),
            "key": key, "row": row}


def _bucket_pairs(group: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Inside one (band, bucket) group: every row of an equal-key run paired with the run's lowest row."""
    order = np.lexsort((group["row"], group["key"]))
    key, row = group["key"][order], group["row"][order]
    starts = np.concatenate([[True], key[1:] != key[:-1]])
    first = row[starts][np.cumsum(starts) - 1]
    return {"a": first[~starts], "b": row[~starts]}


def minhash(stage: DedupMinhash, frame: pl.DataFrame, ctx: StageContext) -> StageResult:
    """The local ``dedup_minhash`` result, with the signatures and LSH buckets computed on Ray.

    The driver holds the frame, the signatures (``num_perm`` x 4 bytes a row) and the candidate pairs.
    """
    import ray

    cfg = stage.config
    phases = Phases()
    text = stage.text(frame, ctx.kind)
    bands, rows = stage.bands_rows()
    with phases("signatures"):
        signed = to_dataset(pl.DataFrame({"row": np.arange(frame.height), "text": text})).map_batches(
            _signatures, batch_format="pyarrow", batch_size=cfg.batch_size, fn_kwargs={"stage": stage},
        ).materialize()
        parts = [_sig_matrix(t) for t in signed.iter_batches(batch_format="pyarrow", batch_size=None)]
        sig = np.concatenate(parts) if parts else np.empty((0, cfg.num_perm), np.uint32)
    with phases("lsh"):
        buckets = signed.map_batches(_band_rows, batch_format="pyarrow", batch_size=None, fn_kwargs={"bands": bands, "rows": rows,
                                                                                   "seed": cfg.seed})
        partitions = max(1, int(ray.cluster_resources().get("CPU", 1)))  # Ray's default is 200 shuffle partitions
        grouped = buckets.groupby(["band", "bucket"], num_partitions=partitions)
        found = collect(grouped.map_groups(_bucket_pairs, batch_format="numpy"))
        pairs = found.select("a", "b").to_numpy().astype(np.int64) if found.height else np.empty((0, 2), np.int64)
        pairs = unique_pairs(pairs, frame.height)
    return stage.finish(frame, ctx, text=text, sig=sig, pairs=pairs, phases=phases)
