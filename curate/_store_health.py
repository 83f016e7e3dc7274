"""Why a stored dataset cannot be opened or read, in one sentence that names the file."""

from __future__ import annotations

import json
from pathlib import Path

from deltalake import DeltaTable
from deltalake.exceptions import DeltaError, TableNotFoundError

from curate.errors import StoreError


def open_table(path: Path, *, name: str, version: int | None = None) -> DeltaTable | None:
    """The Delta table at ``path`` (at ``version``); None when there is none; StoreError when its log is broken."""
    try:
        return DeltaTable(str(path), version=version)
    except TableNotFoundError:
        return None
    except (DeltaError, OSError) as exc:
        raise broken_log(path, name=name, exc=exc) from None


def broken_log(path: Path, *, name: str, exc: Exception) -> StoreError:
    """The error for a dataset whose ``_delta_log`` Delta Lake cannot read, naming the bad entry if it finds one."""
    bad = _bad_log_entry(path / "_delta_log")
    what = bad or f"Delta Lake cannot read its log {path / '_delta_log'} ({_first_line(exc)})"
    return StoreError(
        f"Dataset {name!r} is broken: {what}. Restore that file from a backup, "
        f"or move {path} out of the store to drop the dataset."
    )


def unreadable_version(path: Path, *, name: str, version: int, exc: Exception) -> StoreError:
    """The error for a version whose rows cannot be read, naming the missing data file if one is missing."""
    table = open_table(path, name=name, version=version)
    missing = [uri for uri in (table.file_uris() if table else []) if not Path(uri).exists()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        return StoreError(
            f"Dataset {name}@{version} cannot be read: its data file {missing[0]} is missing{more}. "
            f"It was deleted outside curate; restore it from a backup, or read another version "
            f"(`curate datasets log {name}` lists them)."
        )
    return StoreError(f"Dataset {name}@{version} cannot be read from {path}: {_first_line(exc)}.")


def os_reason(exc: OSError) -> str:
    """``Read-only file system (store/x)``: an OSError as a short phrase with its file."""
    return f"{exc.strerror or exc} ({exc.filename})" if exc.filename else str(exc.strerror or exc)


def _bad_log_entry(log_dir: Path) -> str | None:
    for entry in sorted(log_dir.glob("*.json")):
        try:
            text = entry.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            return f"its log entry {entry} cannot be read ({exc})"
        if not text.strip():
            return f"its log entry {entry} is empty"
        for number, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                json.loads(line)
            except ValueError:
                return f"its log entry {entry} is not valid JSON (line {number})"
    return None


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
