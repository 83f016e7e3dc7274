"""`curate datasets vacuum`: part files no version references go; every version stays readable."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError

from curate.errors import StoreError
from curate.store import Store
from helpers import SUPPORT_ROWS, write_jsonl, write_pipeline

CURATE = str(Path(sys.executable).with_name("curate"))


def _orphaned(project: Path, *, age_days: float) -> tuple[Store, Path]:
    """Two versions of `support`, plus the part file of a commit that lost to version 1."""
    write_jsonl(project / "data.jsonl", SUPPORT_ROWS)
    write_pipeline(project)
    store = Store(project / "datasets")
    run = [CURATE, "run", "pipeline.yaml"]
    subprocess.run(run, cwd=project, check=True, capture_output=True)
    stale = DeltaTable(str(store.path("support")))  # read at version 0
    subprocess.run(run, cwd=project, check=True, capture_output=True)
    before = set(store.path("support").glob("part-*.parquet"))
    rows = pl.read_delta(str(store.path("support")))
    with pytest.raises(CommitFailedError):  # its data is written, its log entry is not: an orphan
        write_deltalake(stale, rows, mode="overwrite", commit_properties=CommitProperties(max_commit_retries=0))
    (orphan,) = set(store.path("support").glob("part-*.parquet")) - before
    then = time.time() - age_days * 86400
    os.utime(orphan, (then, then))
    return store, orphan


def _heights(store: Store) -> list[int]:
    return [store.read(f"support@{v}").height for v in (0, 1)]


def test_vacuum_dry_run_lists_only_the_orphan_and_deletes_nothing(tmp_path: Path) -> None:
    store, orphan = _orphaned(tmp_path, age_days=8)
    heights = _heights(store)
    result = store.vacuum("support")
    assert result.files == [orphan.name] and not result.deleted
    assert orphan.exists()
    assert _heights(store) == heights


def test_vacuum_deletes_the_orphan_and_keeps_every_version_readable(tmp_path: Path) -> None:
    store, orphan = _orphaned(tmp_path, age_days=8)
    heights = _heights(store)
    assert store.vacuum("support", delete=True).files == [orphan.name]
    assert not orphan.exists()
    assert _heights(store) == heights
    assert store.latest_version("support") == 1  # no VACUUM commits became dataset versions


def test_vacuum_below_seven_days_needs_the_explicit_flag(tmp_path: Path) -> None:
    store, orphan = _orphaned(tmp_path, age_days=0)
    assert store.vacuum("support").files == []  # young: it could be a run still writing
    with pytest.raises(StoreError, match=r"Refusing to vacuum dataset 'support' with a retention of 0 hours"):
        store.vacuum("support", retention_hours=0, delete=True)
    assert orphan.exists()
    assert store.vacuum("support", retention_hours=0, allow_short_retention=True).files == [orphan.name]


def test_vacuum_command_lists_by_default_and_deletes_with_yes(tmp_path: Path) -> None:
    _, orphan = _orphaned(tmp_path, age_days=8)

    def vacuum(*flags: str) -> str:
        cmd = [CURATE, "datasets", "vacuum", "support", *flags]
        env = {"COLUMNS": "300"}
        return subprocess.run(cmd, cwd=tmp_path, check=True, capture_output=True, text=True, env=env).stdout

    listed = vacuum()
    assert orphan.name in listed and "1 unreferenced files older than 168 hours in support (dry run" in listed
    assert orphan.exists()
    assert "deleted 1 unreferenced files" in vacuum("--yes")
    assert not orphan.exists()
