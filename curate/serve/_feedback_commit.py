"""One flush of the serving log: the feedback dataset's previous rows, updated and extended, as one new version.

Every version holds every row (the store's rule): the previous version's rows, with feedback that
arrived since merged into the rows it is about, plus the new completions. A row is found by
``meta.request_id``; its ``id`` (a content hash that covers ``feedback``) is recomputed when its
feedback changes. A completion whose request cannot become a valid ``feedback`` record (no user
turn, an unknown role...) is stored as a removed row of stage ``serve`` with the reason, never
dropped. The commit is :meth:`curate.store.Store.commit`: atomic, never merged, never partial.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from curate.errors import StoreError
from curate.records import SCHEMAS, STORE_COLUMNS, build_frame, record_id
from curate.stats import StageStats
from curate.store import Store

__all__ = ["STAGE", "check_feedback_dataset", "commit_feedback", "logged_request_ids", "merge_feedback"]

STAGE = "serve"  # the stage id of every version `curate serve` commits


def check_feedback_dataset(store: Store, name: str) -> None:
    """Refuse a dataset that exists but was not written by ``curate serve`` (its rows would be rewritten)."""
    if store.latest_version(name) is None:
        return
    info = store.info(name)
    if info.lineage.get("kind") != "feedback" or [s.stage for s in info.stages] != [STAGE]:
        raise StoreError(
            f"Dataset {name!r} version {info.version} was not written by curate serve "
            f"(kind {info.lineage.get('kind')!r}, stages {[s.stage for s in info.stages]}); "
            "pass --feedback-dataset a new name."
        )


def logged_request_ids(store: Store, name: str) -> set[str]:
    """Request ids of every completion in the latest version of ``name`` (empty when it does not exist)."""
    if store.latest_version(name) is None:
        return set()
    ids = store.read(name)["meta"].str.json_path_match("$.request_id").drop_nulls()
    return set(ids.to_list())


def merge_feedback(current: str | None, update: Mapping[str, Any]) -> str:
    """The ``feedback`` JSON of a row after ``update``: given fields replace earlier ones."""
    merged = {**(json.loads(current) if current else {}), **{k: v for k, v in update.items() if v is not None}}
    return json.dumps(merged, sort_keys=True, ensure_ascii=False)


def commit_feedback(
    store: Store, name: str, *, completions: Sequence[Mapping[str, Any]], updates: Mapping[str, Mapping[str, Any]]
) -> int:
    """Commit the previous rows of ``name`` with ``updates`` merged, plus ``completions``, as one version.

    Parameters
    ----------
    completions
        ``feedback`` records (``prompt``, ``completion``, ``model``, ``ts``, ``meta`` with ``request_id``).
    updates
        Request id -> feedback fields, for completions logged here or in an earlier version.

    Returns
    -------
    The version committed.

    Raises
    ------
    StoreError
        The dataset was not written by curate serve, or the commit failed (nothing committed).
    """
    check_feedback_dataset(store, name)
    parent = store.latest_version(name)
    previous = store.read(name) if parent is not None else _empty()
    records = [_updated(dict(r), updates) for r in completions]
    valid, invalid = build_frame("feedback", records)
    carried = _apply(previous, updates)
    kept = pl.concat(
        [carried.filter(pl.col("split").is_not_null()), valid.with_columns(split=pl.lit("train"))],
        how="diagonal_relaxed",
    )
    removed = pl.concat(
        [carried.filter(pl.col("split").is_null()), invalid.with_columns(removed_by=pl.lit(STAGE))],
        how="diagonal_relaxed",
    )
    stats = StageStats(
        stage=STAGE,
        name=STAGE,
        rows_in=previous.height,
        rows_added=len(records),
        rows_kept=kept.height,
        rows_removed=removed.height,
        removed_by_reason=dict(removed.group_by("reason").len().sort("reason").iter_rows()) if removed.height else {},
        extra={"completions": len(records), "feedback_updates": len(updates)},
    )
    parents = [] if parent is None else [{"dataset": name, "version": parent, "rows": previous.height}]
    lineage = {"source": "curate serve", "parents": parents}
    removed = removed.drop("split")
    return store.commit(name, kind="feedback", kept=kept, removed=removed, stages=[stats], lineage=lineage)


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema={**SCHEMAS["feedback"], **STORE_COLUMNS})


def _updated(record: dict[str, Any], updates: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    update = updates.get(str((record.get("meta") or {}).get("request_id")))
    if update:
        record["feedback"] = merge_feedback(record.get("feedback"), update)
    return record


def _apply(rows: pl.DataFrame, updates: Mapping[str, Mapping[str, Any]]) -> pl.DataFrame:
    """``rows`` with the feedback of ``updates`` merged into the rows they name (order kept)."""
    if not updates or not rows.height:
        return rows
    request = rows["meta"].str.json_path_match("$.request_id")
    if not request.is_in(list(updates)).any():
        return rows
    out = []
    for row, rid in zip(rows.iter_rows(named=True), request.to_list(), strict=True):
        if rid in updates:
            row["feedback"] = merge_feedback(row["feedback"], updates[rid])
            row["id"] = record_id("feedback", row)
        out.append(row)
    return pl.DataFrame(out, schema=rows.schema)
