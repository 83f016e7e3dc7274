"""A store that cannot be written or read fails with one sentence naming the file, dataset and version."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from curate.catalog import export_dataset, list_datasets
from curate.errors import ConfigError, InputError, StoreError
from curate.pipeline import run_pipeline
from curate.store import Store, parse_ref
from helpers import SUPPORT_ROWS, write_jsonl, write_pipeline

CURATE = str(Path(sys.executable).with_name("curate"))


def _curate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CURATE, *args], cwd=cwd, capture_output=True, text=True, env={"COLUMNS": "200", "PATH": ""})


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_jsonl(tmp_path / "data.jsonl", SUPPORT_ROWS)
    write_pipeline(tmp_path)
    return tmp_path


@contextmanager
def _read_only(folder: Path) -> Iterator[None]:
    """Make ``folder`` unwritable: a mode for users, ``chattr +i`` for root (root ignores modes)."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    if not shutil.which("chattr") or subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode:
        pytest.skip("cannot make a folder read-only for root here (chattr +i unavailable)")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_output_name_with_a_final_newline_is_rejected_and_leaves_no_folder(tmp_path: Path, store_root: Path) -> None:
    write_jsonl(tmp_path / "data.jsonl", SUPPORT_ROWS)
    pipeline = write_pipeline(tmp_path, output='"nl\\n"')
    with pytest.raises(ConfigError, match=r"line \d+, output: 'nl\\n' is not a valid dataset name"):
        run_pipeline(pipeline, store_root=store_root)
    with pytest.raises(StoreError, match="not a dataset reference"):
        parse_ref("nl\n")
    assert not store_root.exists()


def test_read_only_store_gives_one_line_error_and_no_rust_panic(project: Path) -> None:
    assert _curate("run", "pipeline.yaml", cwd=project).returncode == 0
    with _read_only(project / "datasets" / "support"):
        again = _curate("run", "pipeline.yaml", cwd=project)
    assert again.returncode == 1
    assert "error: Cannot write dataset 'support' in the store datasets:" in again.stderr
    assert "Nothing was committed." in again.stderr
    assert "panicked" not in again.stderr and "Traceback" not in again.stderr
    assert Store(project / "datasets").latest_version("support") == 0


def test_read_only_store_root_refuses_a_new_dataset_and_leaves_nothing(project: Path) -> None:
    root = project / "datasets"
    root.mkdir()
    with _read_only(root):
        result = _curate("run", "pipeline.yaml", cwd=project)
    assert result.returncode == 1
    assert "error: Cannot write dataset 'support' in the store datasets:" in result.stderr
    assert list(root.iterdir()) == []


def _two_datasets(project: Path) -> Store:
    assert _curate("run", "pipeline.yaml", cwd=project).returncode == 0
    write_pipeline(project, output="other")
    assert _curate("run", "pipeline.yaml", cwd=project).returncode == 0
    return Store(project / "datasets")


def test_corrupt_log_entry_is_named_and_does_not_hide_other_datasets(project: Path) -> None:
    store = _two_datasets(project)
    entry = store.path("other") / "_delta_log" / f"{0:020d}.json"
    entry.write_text('{"commitInfo": {"timestamp": 1\n', encoding="utf-8")
    broken = rf"Dataset 'other' is broken: its log entry {entry} is not valid JSON \(line 1\)"
    with pytest.raises(StoreError, match=broken):
        store.read("other")
    listed = {d.name: d for d in list_datasets(store)}
    assert listed["support"].broken is None and listed["support"].latest == 0
    assert str(entry) in str(listed["other"].broken)
    shown = _curate("datasets", "list", cwd=project)
    assert shown.returncode == 0 and "support" in shown.stdout
    assert "broken: Dataset 'other' is broken: its log entry" in " ".join(shown.stdout.split())


def test_deleted_part_file_names_the_file_and_the_version(project: Path) -> None:
    assert _curate("run", "pipeline.yaml", cwd=project).returncode == 0
    store = Store(project / "datasets")
    (part,) = store.path("support").glob("part-*.parquet")
    part.unlink()
    with pytest.raises(StoreError, match=rf"Dataset support@0 cannot be read: its data file {part} is missing"):
        store.read("support")
    shown = _curate("datasets", "show", "support@0", cwd=project)
    assert shown.returncode == 1 and "Traceback" not in shown.stderr
    assert f"its data file {part} is missing" in " ".join(shown.stderr.split())


def test_store_under_a_file_is_refused_before_any_work(project: Path) -> None:
    refused = r"The store .*data.jsonl/x cannot be used: .*data.jsonl is a file, not a folder"
    with pytest.raises(StoreError, match=refused):
        Store(project / "data.jsonl" / "x")
    result = _curate("run", "pipeline.yaml", "--store", "data.jsonl/x", cwd=project)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "data.jsonl is a file, not a folder" in result.stderr


def test_export_of_an_unknown_split_lists_the_splits_and_writes_nothing(project: Path) -> None:
    assert _curate("run", "pipeline.yaml", cwd=project).returncode == 0
    out = project / "out.jsonl"
    splits = r"'bogus' is not a split: use one of train, validation, test \(support has test 2, train 2, validation 2\)"
    with pytest.raises(StoreError, match=splits):
        export_dataset(Store(project / "datasets"), "support", format="messages", path=out, split="bogus")
    assert not out.exists()


def test_export_into_a_missing_folder_names_it_and_creates_nothing(project: Path) -> None:
    assert _curate("run", "pipeline.yaml", cwd=project).returncode == 0
    out = project / "no" / "such" / "x.jsonl"
    with pytest.raises(InputError, match=rf"Cannot write {out}: the folder {out.parent} does not exist"):
        export_dataset(Store(project / "datasets"), "support", format="messages", path=out)
    assert not (project / "no").exists()
