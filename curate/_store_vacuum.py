"""Finding (and deleting) part files that no version of a dataset references."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from deltalake import DeltaTable

from curate.errors import StoreError

DEFAULT_RETENTION_HOURS = 168  # deltalake's default (delta.deletedFileRetentionDuration, 7 days)


@dataclass(frozen=True)
class VacuumResult:
    """Part files in a dataset's folder that no version references (``files`` relative to ``folder``)."""

    name: str
    folder: Path
    files: list[str]
    deleted: bool
    retention_hours: int


def vacuum_table(
    table: DeltaTable,
    folder: Path,
    *,
    name: str,
    retention_hours: int,
    delete: bool,
    allow_short_retention: bool,
) -> VacuumResult:
    """Unreferenced files of ``table`` older than ``retention_hours``, deleted when ``delete``."""
    if retention_hours < 0 or (retention_hours < DEFAULT_RETENTION_HOURS and not allow_short_retention):
        raise StoreError(
            f"Refusing to vacuum dataset {name!r} with a retention of {retention_hours} hours: files younger "
            f"than {DEFAULT_RETENTION_HOURS} hours (7 days) may belong to a run that is still writing. "
            "Pass --allow-short-retention (0 hours or more) when no run is writing this dataset."
        )
    versions = sorted(int(entry["version"]) for entry in table.history())
    # Always a dry run: a deleting vacuum commits VACUUM START / END entries, which would become
    # dataset versions without lineage. full=True also finds files no log entry ever named (a run
    # killed between writing its data and committing); keep_versions keeps every file a version reads.
    files = table.vacuum(
        retention_hours=retention_hours,
        dry_run=True,
        enforce_retention_duration=False,
        full=True,
        keep_versions=versions,
    )
    if delete:
        for file in files:
            (folder / file).unlink(missing_ok=True)
    return VacuumResult(name=name, folder=folder, files=sorted(files), deleted=delete, retention_hours=retention_hours)
