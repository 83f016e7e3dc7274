"""Committing one dataset version: the accounting check, the stored rows, and a commit that never merges.

Every commit is made with ``max_commit_retries=0``. delta-rs otherwise resolves a conflicting
commit by retrying it on top of the winner: two runs creating the same new dataset then end up
as one version holding both runs' rows (measured with deltalake 1.6.6). Without retries the
version this run read is the version it commits on top of, or the commit fails and nothing
becomes visible. That also makes the committed version number this run's own.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
from deltalake import CommitProperties
from deltalake.exceptions import DeltaError

from curate._store_health import open_table, os_reason
from curate.errors import StoreError
from curate.records import SCHEMAS, STORE_COLUMNS
from curate.stats import StageStats


def commit_version(
    path: Path,
    *,
    name: str,
    kind: str,
    kept: pl.DataFrame,
    removed: pl.DataFrame,
    stages: list[StageStats],
    lineage: dict[str, Any],
) -> int:
    """Write kept and removed rows as the next version of the table at ``path``; returns that version."""
    _check_accounting(stages, kept=kept, removed=removed)
    rows = _table_rows(kind, kept=kept, removed=removed)
    meta = json.dumps(_lineage(lineage, kind=kind, rows=rows, kept=kept, removed=removed, stages=stages), default=str)
    created = _writable_folder(path, name=name)
    table = open_table(path, name=name)
    read_version = None if table is None else table.version()
    token = uuid.uuid4().hex
    properties = CommitProperties(custom_metadata={"curate": meta, "curate_commit": token}, max_commit_retries=0)
    options: dict[str, Any] = {"commit_properties": properties}
    try:
        if table is None:
            rows.write_delta(str(path), mode="error", delta_write_options=options)
            version = 0  # a create without retries commits version 0 or fails
        else:
            rows.write_delta(table, mode="overwrite", delta_write_options={**options, "schema_mode": "overwrite"})
            version = table.version()  # the version of this commit, not the table's latest
    except (DeltaError, OSError) as exc:
        raise _commit_failed(path, name=name, read_version=read_version, created=created, exc=exc) from None
    if _commit_token(path, version) != token:
        raise StoreError(f"Dataset {name!r} version {version} is not the commit this run made; report this as a bug.")
    return version


def _commit_token(path: Path, version: int) -> str | None:
    """The ``curate_commit`` token in the commit info of ``version`` (read from its log entry)."""
    entry = path / "_delta_log" / f"{version:020d}.json"
    for line in entry.read_text(encoding="utf-8").splitlines():
        action = json.loads(line) if line.strip() else {}
        if "commitInfo" in action:
            return action["commitInfo"].get("curate_commit")
    return None


def _commit_failed(path: Path, *, name: str, read_version: int | None, created: bool, exc: Exception) -> StoreError:
    table = open_table(path, name=name)
    now = None if table is None else table.version()
    if now != read_version:
        return StoreError(
            f"Another run committed dataset {name!r} version {now} while this run was writing; "
            "this run committed nothing. Run it again."
        )
    if created and path.is_dir() and not any(path.iterdir()):
        path.rmdir()
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return StoreError(f"Could not commit a new version of dataset {name!r} in {path}: {reason}. Nothing was committed.")


def _writable_folder(path: Path, *, name: str) -> bool:
    """Create the dataset folder if needed and check files can be written there; True when it was created.

    Checked before Delta writes anything: delta-rs panics (a Rust backtrace) on a read-only folder.
    """
    created = not path.exists()
    try:
        path.mkdir(parents=True, exist_ok=True)
        for folder in (path, path / "_delta_log"):
            if folder.is_dir():
                _probe(folder)
    except OSError as exc:
        if created and path.is_dir() and not any(path.iterdir()):
            path.rmdir()
        raise StoreError(
            f"Cannot write dataset {name!r} in the store {path.parent}: {os_reason(exc)}. "
            "Make the store writable, or pass --store a folder you can write to. Nothing was committed."
        ) from None
    return created


def _probe(folder: Path) -> None:
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(folder)) from None


def _lineage(
    lineage: dict[str, Any],
    *,
    kind: str,
    rows: pl.DataFrame,
    kept: pl.DataFrame,
    removed: pl.DataFrame,
    stages: list[StageStats],
) -> dict[str, Any]:
    per_split = dict(rows.group_by("split").len().iter_rows()) if rows.height else {}
    return {
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
