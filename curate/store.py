"""Versioned datasets: one Delta Lake table per dataset name under a store root.

Each pipeline run commits one table version holding every row: kept rows with ``split``
(train / validation / test) and removed rows with ``split`` null, ``removed_by`` (the stage
id) and ``reason`` (+ ``detail``). The commit is atomic, so a failed run leaves the previous
version latest. The commit's custom metadata key ``curate`` holds the lineage as JSON.

References are ``name@N`` (Delta version N) or ``name`` (latest).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from deltalake import CommitProperties, DeltaTable
from deltalake.exceptions import TableNotFoundError

from curate.errors import StoreError
from curate.records import SCHEMAS, STORE_COLUMNS
from curate.stats import StageStats

if TYPE_CHECKING:
    import datasets

__all__ = ["Store", "VersionInfo", "parse_ref"]

_REF = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]{0,127})(?:@(?P<version>\d+))?$")
SPLITS = ("train", "validation", "test")


def parse_ref(ref: str) -> tuple[str, int | None]:
    """Split ``name@N`` into ``(name, N)``; ``name`` alone gives ``(name, None)`` (latest).

    Raises StoreError for anything that is not a plain dataset name (no paths, no ``..``).
    """
    match = _REF.match(ref)
    if not match or ".." in ref:
        raise StoreError(
            f"{ref!r} is not a dataset reference: use NAME or NAME@VERSION, where NAME has only "
            "letters, digits, '_', '-' and '.' (no '/' or '..')."
        )
    version = match.group("version")
    return match.group("name"), None if version is None else int(version)


@dataclass(frozen=True)
class VersionInfo:
    """One committed version of a dataset and its lineage."""

    name: str
    version: int
    time: datetime
    lineage: dict[str, Any]

    @property
    def stages(self) -> list[StageStats]:
        """Per-stage counts of the run that made this version."""
        return [StageStats.from_dict(s) for s in self.lineage.get("stages", [])]


class Store:
    """A folder (or, later, an object-store URI) of versioned datasets.

    Parameters
    ----------
    root
        Store root; each dataset is the Delta table ``root/NAME``. Created on first commit.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # -- names and versions ---------------------------------------------------------------

    def path(self, name: str) -> Path:
        """Folder of dataset ``name`` (validated: no path traversal)."""
        parse_ref(name)
        return self.root / name

    def _table(self, name: str) -> DeltaTable:
        try:
            return DeltaTable(str(self.path(name)))
        except TableNotFoundError:
            known = ", ".join(self.names()) or "none yet"
            raise StoreError(
                f"No dataset named {name!r} in the store {self.root} (datasets: {known}). "
                "Run a pipeline whose `output` is this name first, or pass --store."
            ) from None

    def names(self) -> list[str]:
        """Names of the datasets in the store."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "_delta_log").is_dir())

    def latest_version(self, name: str) -> int | None:
        """Latest version number of ``name``, or None when it does not exist."""
        try:
            return DeltaTable(str(self.path(name))).version()
        except TableNotFoundError:
            return None

    def resolve(self, ref: str) -> tuple[str, int]:
        """``name@N`` or ``name`` -> ``(name, N)``, checking that the version exists."""
        name, version = parse_ref(ref)
        latest = self._table(name).version()
        if version is None:
            return name, latest
        if version > latest:
            raise StoreError(f"Dataset {name!r} has versions 0..{latest}; version {version} does not exist.")
        return name, version

    # -- reading -------------------------------------------------------------------------

    def read(self, ref: str) -> pl.DataFrame:
        """Every row of a version: kept rows (with ``split``) and removed rows (with reasons)."""
        name, version = self.resolve(ref)
        return pl.read_delta(str(self.path(name)), version=version)

    def kept(self, ref: str, *, split: str | None = None) -> pl.DataFrame:
        """Kept rows of a version (optionally one split), without the removal columns."""
        rows = self.read(ref).filter(pl.col("split").is_not_null())
        if split is not None:
            rows = rows.filter(pl.col("split") == split)
        return rows.drop("removed_by", "reason", "detail")

    def info(self, ref: str) -> VersionInfo:
        """Lineage of one version."""
        name, version = self.resolve(ref)
        return next(v for v in self.history(name) if v.version == version)

    def kind(self, ref: str) -> str:
        """Record kind of a version (from its lineage)."""
        return self.info(ref).lineage["kind"]

    def history(self, name: str) -> list[VersionInfo]:
        """All versions of ``name``, oldest first, with their lineage."""
        out = []
        for entry in self._table(name).history():
            raw = entry.get("curate")
            lineage = json.loads(raw) if isinstance(raw, str) else {}
            time = datetime.fromtimestamp(entry["timestamp"] / 1000, tz=UTC)
            out.append(VersionInfo(name=name, version=int(entry["version"]), time=time, lineage=lineage))
        return sorted(out, key=lambda v: v.version)

    def load(self, ref: str) -> datasets.DatasetDict:
        """Kept rows of a version as a ``datasets.DatasetDict`` with one entry per non-empty split."""
        import datasets

        kept = self.kept(ref)
        return datasets.DatasetDict(
            {
                split: datasets.Dataset(part.drop("split").to_arrow())
                for split in SPLITS
                if (part := kept.filter(pl.col("split") == split)).height
            }
        )

    def cache_dir(self, name: str) -> Path:
        """A folder under the store root for a named cache (e.g. ``embeddings``); created on demand."""
        path = self.root / "_cache" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    # -- writing -------------------------------------------------------------------------

    def commit(
        self,
        name: str,
        *,
        kind: str,
        kept: pl.DataFrame,
        removed: pl.DataFrame,
        stages: list[StageStats],
        lineage: dict[str, Any],
    ) -> int:
        """Write one new version holding kept and removed rows; returns its version number.

        Parameters
        ----------
        kept
            Rows of ``kind`` with ``split`` (null means ``train``).
        removed
            Rows with ``removed_by``, ``reason`` and ``detail``.
        stages
            One stats row per stage, ``convert`` first; checked for the accounting invariant.
        lineage
            Pipeline file, hash, parents...; ``kind``, ``stages``, row counts and time are added.

        Raises
        ------
        StoreError
            The accounting does not balance; nothing is written.
        """
        _check_accounting(stages, kept=kept, removed=removed)
        rows = _table_rows(kind, kept=kept, removed=removed)
        per_split = dict(rows.group_by("split").len().iter_rows()) if rows.height else {}
        meta = {
            **lineage,
            "kind": kind,
            "stages": [s.to_dict() for s in stages],
            "rows": {
                "input": stages[0].rows_in if stages else rows.height,
                "added": sum(s.rows_added for s in stages),
                "kept": kept.height,
                "removed": removed.height,
                "per_split": {str(k) if k is not None else "removed": v for k, v in per_split.items()},
            },
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        path = self.path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        exists = self.latest_version(name) is not None
        rows.write_delta(
            str(path),
            mode="overwrite" if exists else "error",
            delta_write_options={
                "schema_mode": "overwrite" if exists else None,
                "commit_properties": CommitProperties(custom_metadata={"curate": json.dumps(meta, default=str)}),
            },
        )
        return DeltaTable(str(path)).version()


def _table_rows(kind: str, *, kept: pl.DataFrame, removed: pl.DataFrame) -> pl.DataFrame:
    """Kept and removed rows in one frame: record columns, extra columns, then store columns."""
    kept = kept.with_columns(
        split=pl.col("split").fill_null("train") if "split" in kept.columns else pl.lit("train"),
        removed_by=pl.lit(None, pl.String),
        reason=pl.lit(None, pl.String),
        detail=pl.lit(None, pl.String),
    )
    removed = removed.with_columns(split=pl.lit(None, pl.String))
    rows = pl.concat([kept, removed], how="diagonal_relaxed")
    record = list(SCHEMAS[kind])
    extra = [c for c in rows.columns if c not in record and c not in STORE_COLUMNS]
    return rows.select(record + extra + list(STORE_COLUMNS)).cast(dict(STORE_COLUMNS))


def _check_accounting(stages: list[StageStats], *, kept: pl.DataFrame, removed: pl.DataFrame) -> None:
    problems = []
    for s in stages:
        if not s.balanced:
            problems.append(
                f"stage {s.stage!r}: {s.rows_in} in + {s.rows_added} added != {s.rows_kept} kept + {s.rows_removed} removed"
            )
    for before, after in zip(stages, stages[1:], strict=False):
        if after.rows_in != before.rows_kept:
            problems.append(f"stage {after.stage!r} got {after.rows_in} rows but {before.stage!r} kept {before.rows_kept}")
    if stages and stages[-1].rows_kept != kept.height:
        problems.append(f"the last stage kept {stages[-1].rows_kept} rows but {kept.height} are being written")
    by_stage = dict(removed.group_by("removed_by").len().iter_rows()) if removed.height else {}
    for s in stages:
        if by_stage.get(s.stage, 0) != s.rows_removed:
            problems.append(f"stage {s.stage!r} reports {s.rows_removed} removed rows but {by_stage.get(s.stage, 0)} carry its name")
    if problems:
        raise StoreError(
            "Refusing to commit: rows in != rows kept + rows removed.\n  " + "\n  ".join(problems)
            + "\nThis is a bug in a stage; no version was written."
        )
