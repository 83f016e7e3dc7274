"""Shared by the dedup stages: pairs -> clusters -> one kept row per cluster -> StageResult."""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from curate.errors import StageError
from curate.stages.base import StageResult

__all__ = ["KEEP_DESCRIPTION", "clusters", "dedup_result", "keep_priority", "representatives"]

KEEP_DESCRIPTION = (
    "Which row of a duplicate cluster is kept: `first` (earliest in the input), `longest` (longest "
    "compared text) or the name of a numeric column such as a quality score (highest value wins; "
    "nulls lose). Ties go to the earliest row."
)


def clusters(n: int, pairs: np.ndarray) -> np.ndarray:
    """Connected-component label of each of ``n`` rows given ``(k, 2)`` similar pairs."""
    graph = coo_matrix((np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def keep_priority(frame: pl.DataFrame, text: pl.Series, *, keep: str, stage_id: str) -> np.ndarray | None:
    """Per-row priority for ``keep`` (higher is kept), or ``None`` for ``first``."""
    if keep == "first":
        return None
    if keep == "longest":
        return text.fill_null("").str.len_chars().to_numpy().astype(np.float64)
    if keep not in frame.columns or not frame.schema[keep].is_numeric():
        found = f"has type {frame.schema[keep]}" if keep in frame.columns else "is missing"
        raise StageError(
            f"Stage {stage_id!r}: keep={keep!r} names no numeric column (the column {found}). "
            "Use `first`, `longest` or a numeric column of the data, e.g. a quality score."
        )
    return frame.get_column(keep).cast(pl.Float64).fill_null(-np.inf).fill_nan(-np.inf).to_numpy()


def representatives(labels: np.ndarray, priority: np.ndarray | None) -> np.ndarray:
    """Row index of the kept row of each row's cluster (highest priority, then earliest row)."""
    rows = np.arange(len(labels))
    prio = np.zeros(len(labels)) if priority is None else priority
    order = np.lexsort((rows, -prio, labels))  # by label, then priority descending, then row
    head = np.concatenate([[True], labels[order][1:] != labels[order][:-1]])
    best = order[head]  # one per label, in label order
    slot = np.cumsum(head) - 1
    rep = np.empty(len(labels), dtype=np.int64)
    rep[order] = best[slot]
    return rep


def dedup_result(
    frame: pl.DataFrame, rep: np.ndarray, similarity: np.ndarray, *, reason: str, stats: dict
) -> StageResult:
    """Keep rows that are their own representative; the others are removed with ``reason`` and
    ``detail = {"duplicate_of": <kept id>, "similarity": s, "cluster_size": k}``."""
    size = np.bincount(rep, minlength=len(rep))[rep]
    removed = rep != np.arange(len(rep))
    ids = frame.get_column("id")
    detail = pl.struct(
        duplicate_of=ids.gather(rep),
        similarity=pl.Series(np.round(similarity, 4)),
        cluster_size=pl.Series(size),
    ).struct.json_encode()  # an expression over literal series, evaluated on `frame`
    stats = {**stats, "clusters": len(np.unique(rep[removed])), "removed": int(removed.sum())}
    return StageResult.partition(frame, pl.Series(~removed), reason=reason, detail=detail, stats=stats)
