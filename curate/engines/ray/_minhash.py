"""``dedup_minhash`` on Ray: signatures signed and kept on the cluster, LSH band buckets through ``groupby``.

The driver ships each block of ``batch_size`` rows as two Arrow columns (row index, compared text),
at most two blocks per cluster CPU at a time, and drops each block once a worker has signed it.
The signatures stay in the object store; band keys are computed from them in ``map_batches`` and
only (band, bucket, key, row) rows go through the ``groupby``, whose groups give the candidate pairs
:func:`curate.stages._minhash_lsh.band_pairs` finds (each bucket member paired with the bucket's
lowest row). The driver collects the pairs; verification and the similarity of removed rows fetch
the signatures of one end of each pair and compare on the workers. Components and the keep rule
run on the driver in :meth:`DedupMinhash.finish`, the local code, so the result is local's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pyarrow as pa

from curate.engines.ray._blocks import collect
from curate.stages._minhash import sorted_unique
from curate.stages._minhash_lsh import band_keys, estimated_jaccard, has_tokens, unique_pairs
from curate.stats import Phases

if TYPE_CHECKING:
    import ray

    from curate.stages._minhash import MinHasher
    from curate.stages.base import StageContext, StageResult
    from curate.stages.dedup_minhash import DedupMinhash

__all__ = ["minhash"]

BUCKETS = 64  # groups per band: keys are spread over band x bucket groups so no group holds a whole band


def _sign(block: pa.Table, hasher: MinHasher) -> pa.Table:
    """(row, text) -> (row, sig): one ``num_perm`` uint32 signature per row."""
    sig = hasher.signatures(pl.from_arrow(block["text"]))  # (n, num_perm) uint32
    sig_column = pa.FixedSizeListArray.from_arrays(pa.array(sig.ravel()), sig.shape[1])
    return pa.table({"row": block["row"], "sig": sig_column})


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


def _take(block: pa.Table, rows: np.ndarray) -> np.ndarray:
    """The signatures of ``rows`` (all in ``block``)."""
    return _sig_matrix(block)[np.searchsorted(block["row"].to_numpy(), rows)]


def _estimate(block: pa.Table, known: tuple[np.ndarray, np.ndarray], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Estimated Jaccard of pairs ``(a[i], b[i])``: ``b`` in ``block``, ``a`` among the ``known`` (rows, signatures)."""
    rows, sig = known
    return estimated_jaccard(sig[np.searchsorted(rows, a)], _take(block, b))


class _Signed:
    """Signatures held on the cluster as blocks of ``block_rows`` consecutive rows."""

    def __init__(self, blocks: list[ray.ObjectRef], *, block_rows: int) -> None:
        self.blocks = blocks
        self.block_rows = block_rows

    def _by_block(self, rows: np.ndarray) -> list[tuple[int, slice]]:
        """``rows`` (sorted) cut into (block, slice) runs."""
        block = rows // self.block_rows
        cuts = np.flatnonzero(np.diff(block)) + 1
        return [(int(block[lo]), slice(lo, hi)) for lo, hi in zip([0, *cuts], [*cuts, len(rows)], strict=True)]

    def estimate(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Estimated Jaccard of the row pairs ``(a[i], b[i])``: the signatures of the end with fewer
        distinct rows go to the driver and out to the blocks of the other end, which compare."""
        import ray

        if not len(a):
            return np.empty(0)
        known, other = sorted_unique(a), sorted_unique(b)
        if len(known) > len(other):
            a, b, known = b, a, other
        take, estimate = ray.remote(_take), ray.remote(_estimate)
        parts = ray.get([take.remote(self.blocks[i], known[s]) for i, s in self._by_block(known)])
        known_ref = ray.put((known, np.concatenate(parts)))
        del parts
        order = np.argsort(b, kind="stable")
        a, b = a[order], b[order]
        found = ray.get([estimate.remote(self.blocks[i], known_ref, a[s], b[s]) for i, s in self._by_block(b)])
        out = np.empty(len(order))
        out[order] = np.concatenate(found)
        return out


def _sign_blocks(stage: DedupMinhash, frame: pl.DataFrame, ctx: StageContext, *, in_flight: int) -> list[ray.ObjectRef]:
    """Each block of ``batch_size`` rows shipped as (row, text) and signed on a worker; no more than
    ``in_flight`` blocks of text are out at once, and each is released once signed."""
    import ray

    size = stage.config.batch_size
    sign, hasher = ray.remote(_sign), ray.put(stage.hasher())
    signed, pending = [], []
    for start in range(0, frame.height, size):
        if len(pending) >= in_flight:
            _, pending = ray.wait(pending, num_returns=1, fetch_local=False)
        part = frame.slice(start, size)
        block = pa.table({"row": np.arange(start, start + part.height), "text": stage.text(part, ctx.kind).to_arrow()})
        signed.append(sign.remote(block, hasher))  # the block goes to the object store until the task ends
        pending.append(signed[-1])
    ray.wait(signed, num_returns=len(signed), fetch_local=False)
    return signed


def minhash(stage: DedupMinhash, frame: pl.DataFrame, ctx: StageContext) -> StageResult:
    """The local ``dedup_minhash`` result, with the signatures and LSH buckets computed on Ray.

    The driver holds the frame, at most two blocks of text per cluster CPU, the candidate pairs,
    the signatures of one end of the pairs while comparing them, and the union-find arrays of the
    components (8 bytes a row); the signatures stay on the cluster.
    """
    import ray
    import ray.data

    cfg = stage.config
    phases = Phases()
    bands, rows = stage.bands_rows()
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    with phases("signatures"):
        signed = _Signed(_sign_blocks(stage, frame, ctx, in_flight=2 * cpus), block_rows=cfg.batch_size)
    with phases("lsh"):
        buckets = ray.data.from_arrow_refs(signed.blocks).map_batches(
            _band_rows, batch_format="pyarrow", batch_size=None,
            fn_kwargs={"bands": bands, "rows": rows, "seed": cfg.seed},
        )
        grouped = buckets.groupby(["band", "bucket"], num_partitions=cpus)  # Ray's default is 200 shuffle partitions
        found = collect(grouped.map_groups(_bucket_pairs, batch_format="numpy"))
        pairs = found.select("a", "b").to_numpy().astype(np.int64) if found.height else np.empty((0, 2), np.int64)
        pairs = unique_pairs(pairs, frame.height)
        del buckets, grouped, found
    return stage.finish(frame, ctx, pairs=pairs, estimate=signed.estimate, phases=phases)
