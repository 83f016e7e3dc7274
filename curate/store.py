"""Versioned datasets: one Delta Lake table per dataset name under a store root.

Each pipeline run commits one table version holding every row: kept rows with ``split``
(train / validation / test) and removed rows with ``split`` null, ``removed_by`` (the stage
id) and ``reason`` (+ ``detail``). The commit is atomic and never merged with a concurrent
one, so a failed or beaten run leaves the previous version latest. The commit's custom metadata
key ``curate`` holds the lineage as JSON.

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
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from curate._store_health import open_table, unreadable_version
from curate._store_vacuum import DEFAULT_RETENTION_HOURS, VacuumResult, vacuum_table
from curate._store_write import commit_version
from curate.errors import StoreError
from curate.stats import StageStats

if TYPE_CHECKING:
    import datasets

__all__ = ["DEFAULT_RETENTION_HOURS", "Store", "VacuumResult", "VersionInfo", "parse_ref"]

_REF = re.compile(r"(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]{0,127})(?:@(?P<version>\d+))?")
SPLITS = ("train", "validation", "test")


def parse_ref(ref: str) -> tuple[str, int | None]:
    """Split ``name@N`` into ``(name, N)``; ``name`` alone gives ``(name, None)`` (latest).

    Raises StoreError for anything that is not a plain dataset name (no paths, no ``..``).
    """
    match = _REF.fullmatch(ref)  # not match(): `$` would accept a final newline
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

    Raises
    ------
    StoreError
        ``root`` lies under a file (``--store notes.txt/x``).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        for folder in (self.root, *self.root.parents):
            if folder.exists():
                if not folder.is_dir():
                    raise StoreError(
                        f"The store {self.root} cannot be used: {folder} is a file, not a folder. "
                        "Pass --store a folder (it is created on the first commit)."
                    )
                break

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # -- names and versions ---------------------------------------------------------------

    def path(self, name: str) -> Path:
        """Folder of dataset ``name`` (validated: no path traversal)."""
        parse_ref(name)
        return self.root / name

    def _table(self, name: str, *, version: int | None = None) -> DeltaTable:
        table = open_table(self.path(name), name=name, version=version)
        if table is None:
            known = ", ".join(self.names()) or "none yet"
            raise StoreError(
                f"No dataset named {name!r} in the store {self.root} (datasets: {known}). "
                "Run a pipeline whose `output` is this name first, or pass --store."
            )
        return table

    def names(self) -> list[str]:
        """Names of the datasets in the store (folders with a non-empty Delta log)."""
        if not self.root.is_dir():
            return []
        logs = (p / "_delta_log" for p in self.root.iterdir())
        return sorted(log.parent.name for log in logs if log.is_dir() and any(log.iterdir()))

    def latest_version(self, name: str) -> int | None:
        """Latest version number of ``name``, or None when it does not exist."""
        table = open_table(self.path(name), name=name)
        return None if table is None else table.version()

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
        try:
            return pl.read_delta(str(self.path(name)), version=version)
        except (OSError, DeltaError, pl.exceptions.PolarsError) as exc:
            raise unreadable_version(self.path(name), name=name, version=version, exc=exc) from None

    def kept(self, ref: str, *, split: str | None = None) -> pl.DataFrame:
        """Kept rows of a version (optionally one split), without the removal columns.

        Raises StoreError when ``split`` is not one of train, validation, test.
        """
        rows = self.read(ref).filter(pl.col("split").is_not_null())
        if split is not None and split not in SPLITS:
            counts = ", ".join(f"{s} {n}" for s, n in rows.group_by("split").len().sort("split").iter_rows())
            raise StoreError(
                f"{split!r} is not a split: use one of {', '.join(SPLITS)} ({ref} has {counts or 'no kept rows'})."
            )
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
        """Write one new version holding kept and removed rows; returns the version this call committed.

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
            The accounting does not balance, the store is not writable, or another run committed
            ``name`` while this one was writing (the commit is never merged with theirs). Nothing
            is committed.
        """
        return commit_version(
            self.path(name), name=name, kind=kind, kept=kept, removed=removed, stages=stages, lineage=lineage
        )

    def vacuum(
        self,
        name: str,
        *,
        retention_hours: int = DEFAULT_RETENTION_HOURS,
        delete: bool = False,
        allow_short_retention: bool = False,
    ) -> VacuumResult:
        """Part files of ``name`` that no version references (left by a killed or losing run).

        Files any version still references are never listed, so every version stays readable.

        Parameters
        ----------
        retention_hours
            Only files older than this are listed; younger ones may belong to a run that is
            still writing. Below 168 (7 days, deltalake's default) needs ``allow_short_retention``.
        delete
            Delete the listed files; ``False`` (the default) only lists them.
        allow_short_retention
            Accept ``retention_hours`` below 168: only safe when no run is writing ``name``.

        Raises
        ------
        StoreError
            A retention below 168 hours without ``allow_short_retention``, or a negative one.
        """
        return vacuum_table(
            self._table(name),
            self.path(name),
            name=name,
            retention_hours=retention_hours,
            delete=delete,
            allow_short_retention=allow_short_retention,
        )
