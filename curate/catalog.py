"""Read-only views of the store behind `curate datasets list/log/show/export`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from curate.errors import StoreError
from curate.formats import write_records
from curate.store import Store, VersionInfo

__all__ = ["DatasetOverview", "DatasetSummary", "export_dataset", "list_datasets", "dataset_log", "show_dataset"]


@dataclass
class DatasetSummary:
    """One line of `curate datasets list`."""

    name: str
    latest: int
    kind: str
    kept: int
    removed: int
    time: str
    broken: str | None = None  # why the dataset cannot be read (then the counts are 0)


@dataclass
class DatasetOverview:
    """What `curate datasets show NAME@N` prints."""

    info: VersionInfo
    per_split: dict[str, int]
    per_label: dict[str, dict[str, int]] = field(default_factory=dict)  # label -> split -> rows
    removed: list[tuple[str, str, int]] = field(default_factory=list)  # (stage, reason, rows)


def list_datasets(store: Store) -> list[DatasetSummary]:
    """Every dataset in the store with its latest version's counts; a broken one says why in ``broken``."""
    out = []
    for name in store.names():
        try:
            info = store.history(name)[-1]
        except StoreError as exc:  # one broken dataset must not hide the others
            out.append(DatasetSummary(name=name, latest=-1, kind="?", kept=0, removed=0, time="", broken=str(exc)))
            continue
        rows = info.lineage.get("rows", {})
        out.append(
            DatasetSummary(
                name=name,
                latest=info.version,
                kind=info.lineage.get("kind", "?"),
                kept=rows.get("kept", 0),
                removed=rows.get("removed", 0),
                time=info.time.isoformat(timespec="seconds"),
            )
        )
    return out


def dataset_log(store: Store, name: str) -> list[VersionInfo]:
    """Versions of ``name``, newest first, with lineage and per-stage counts."""
    return list(reversed(store.history(name)))


def show_dataset(store: Store, ref: str) -> DatasetOverview:
    """Counts of one version per split, per label and split, and removed rows per stage and reason."""
    rows = store.read(ref)
    info = store.info(ref)
    kept = rows.filter(pl.col("split").is_not_null())
    per_label: dict[str, dict[str, int]] = {}
    if "label" in rows.columns:
        for label, split, n in kept.group_by("label", "split").len().sort("label", "split").iter_rows():
            per_label.setdefault(str(label), {})[split] = n
    removed = rows.filter(pl.col("split").is_null()).group_by("removed_by", "reason").len()
    return DatasetOverview(
        info=info,
        per_split=dict(kept.group_by("split").len().sort("split").iter_rows()),
        per_label=per_label,
        removed=sorted(removed.iter_rows(), key=lambda r: (-r[2], r[0], r[1])),
    )


def export_dataset(store: Store, ref: str, *, format: str, path: Path, split: str | None = None) -> int:
    """Write the kept rows of a version (optionally one split) as JSONL in ``format``; returns rows written."""
    kind = store.kind(ref)
    return write_records(store.kept(ref, split=split), kind=kind, format=format, path=path)
