"""Step 1, *collect*: production rows not seen by an earlier iteration -> a new version of the loop's feedback dataset.

Rows come from files (any format the readers turn into ``feedback`` records) or from the
``feedback`` dataset ``curate serve`` writes. A row is new when its id is in no earlier version
of the loop's feedback dataset; the others are removed with reason ``already_collected``, so the
version accounts for every row read. The lineage names the files or the serve dataset version
and the time range (``ts``) of the new rows.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from curate.errors import CurateError
from curate.formats.reader import read_source
from curate.loop.config import CollectConfig
from curate.records import SCHEMAS
from curate.stats import StageStats
from curate.store import Store

__all__ = ["Collected", "collect"]


@dataclass(frozen=True)
class Collected:
    """The new rows and the version of the feedback dataset that holds them (``None``: nothing new)."""

    rows: pl.DataFrame
    version: int | None
    lineage: dict


def _seen_ids(store: Store, name: str) -> set[str]:
    if store.latest_version(name) is None:
        return set()
    seen: set[str] = set()
    for info in store.history(name):
        seen.update(store.read(f"{name}@{info.version}").get_column("id").to_list())
    return seen


def _read(config: CollectConfig, *, store: Store, base_dir: Path) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    """(valid feedback rows, invalid rows with reason/detail, where they came from)."""
    if config.dataset is not None:
        name, version = store.resolve(config.dataset)
        if store.kind(f"{name}@{version}") != "feedback":
            raise CurateError(f"collect.dataset {name}@{version} holds {store.kind(name)} rows; the loop collects `feedback` rows.")
        rows = store.kept(f"{name}@{version}").drop("split")
        return rows, pl.DataFrame(), {"dataset": f"{name}@{version}"}
    source = config.files.model_copy(update={"kind": config.files.kind or "feedback"})  # type: ignore[union-attr]
    read = read_source(source, base_dir=base_dir)
    if read.kind != "feedback":
        raise CurateError(f"collect.files {source.path} holds {read.kind} rows; the loop collects `feedback` rows.")
    return read.valid, read.invalid, {"files": read.files}


def collect(config: CollectConfig, *, store: Store, feedback_name: str, base_dir: Path, iteration: int) -> Collected:
    """Read production rows, keep those no earlier iteration collected, commit them as a new version.

    Parameters
    ----------
    config
        The loop's ``collect`` block.
    store
        The store holding the loop's datasets.
    feedback_name
        The loop's feedback dataset (created by the first collect).
    base_dir
        Folder relative file paths resolve against (the loop file's folder).
    iteration
        The iteration number, recorded in the lineage.

    Returns
    -------
    :class:`Collected`; ``version`` is ``None`` and nothing is committed when no row is new.
    """
    start = time.perf_counter()
    valid, invalid, origin = _read(config, store=store, base_dir=base_dir)
    seen = _seen_ids(store, feedback_name)
    is_new = ~pl.col("id").is_in(list(seen)) & pl.col("id").is_first_distinct()
    new = valid.filter(is_new).select(list(SCHEMAS["feedback"]))
    ts = new.get_column("ts").drop_nulls().sort()
    lineage = {**origin, "loop_iteration": iteration, "ts_range": [ts.first(), ts.last()] if ts.len() else None}
    if new.height == 0:
        return Collected(rows=new, version=None, lineage=lineage)
    old = valid.filter(~is_new).with_columns(
        removed_by=pl.lit("collect"), reason=pl.lit("already_collected"), detail=pl.lit(json.dumps({"rule": "id seen"}))
    )
    removed = [old]
    stages = []
    if invalid.height:
        removed.append(invalid.with_columns(removed_by=pl.lit("convert")))
        stages.append(StageStats("convert", "convert", valid.height + invalid.height, 0, valid.height, invalid.height,
                                 dict(invalid.group_by("reason").len().iter_rows())))  # fmt: skip
    stages.append(StageStats("collect", "collect", valid.height, 0, new.height, old.height,
                             {"already_collected": old.height} if old.height else {},
                             seconds=round(time.perf_counter() - start, 3)))  # fmt: skip
    version = store.commit(
        feedback_name, kind="feedback", kept=new, removed=pl.concat(removed, how="diagonal_relaxed"),
        stages=stages, lineage={**lineage, "parents": [origin["dataset"]] if "dataset" in origin else []},
    )  # fmt: skip
    return Collected(rows=new, version=version, lineage=lineage)
