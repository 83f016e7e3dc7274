"""`curate datasets diff`: two flagship versions, the second with one extra stage."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl

from curate.report import diff_versions
from curate.report.diff import render_diff_html, render_diff_text
from curate.store import Store

CURATE = str(Path(sys.executable).with_name("curate"))


def test_diff_names_exactly_the_rows_the_extra_stage_removed(flagship_store: Store) -> None:
    diff = diff_versions(flagship_store, "support@0", "support@1")
    new = flagship_store.read("support@1").filter(pl.col("removed_by") == "quality#2")
    assert new.height > 0
    assert {c.id for c in diff.removed} == set(new["id"])
    assert {(c.stage, c.reason) for c in diff.removed} == {("quality#2", "too_long")}
    kept_before = dict(flagship_store.kept("support@0").select("id", "split").iter_rows())
    assert all(c.split_a == kept_before[c.id] for c in diff.removed)
    assert diff.added == [] and diff.moved == []


def test_diff_the_other_way_lists_the_same_rows_as_added(flagship_store: Store) -> None:
    forward = diff_versions(flagship_store, "support@0", "support@1")
    backward = diff_versions(flagship_store, "support@1", "support@0")
    assert [c.id for c in backward.added] == sorted(c.id for c in forward.removed)
    assert backward.removed == [] and backward.moved == []


def test_diff_finds_rows_moved_between_splits(tmp_path: Path) -> None:
    from helpers import SUPPORT_ROWS, write_jsonl, write_pipeline
    from curate.pipeline import run_pipeline

    write_jsonl(tmp_path / "data.jsonl", SUPPORT_ROWS)
    store = Store(tmp_path / "store")
    for test in (0.2, 0.5):
        stages = f"  - dedup_exact: {{}}\n  - split: {{test: {test}, validation: 0.2, seed: 0}}\n"
        run_pipeline(write_pipeline(tmp_path, stages=stages), store_root=store.root)
    diff = diff_versions(store, "support@0", "support@1")
    a, b = (dict(store.kept(f"support@{v}").select("id", "split").iter_rows()) for v in (0, 1))
    assert {(c.id, c.split_a, c.split_b) for c in diff.moved} == {(i, a[i], b[i]) for i in a if a[i] != b[i]}
    assert diff.moved and diff.added == [] and diff.removed == []


def test_diff_text_and_html_name_the_stage_and_reason(flagship_store: Store, tmp_path: Path) -> None:
    diff = diff_versions(flagship_store, "support@0", "support@1")
    text = render_diff_text(diff, limit=None)
    assert text.splitlines()[0] == f"support@0 -> support@1: 0 added, {len(diff.removed)} removed, 0 moved"
    assert f"removed by quality#2: too_long {len(diff.removed)}" in text
    assert all(c.id in text for c in diff.removed)
    page = render_diff_html(diff)
    assert page.startswith("<!doctype html>") and diff.removed[0].id in page and "too_long" in page


def test_diff_command_prints_the_counts_and_writes_html(flagship_store: Store, tmp_path: Path) -> None:
    out = subprocess.run(
        [CURATE, "datasets", "diff", "support@0", "support@1",
         "--store", str(flagship_store.root), "--html", str(tmp_path / "diff.html")],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "0 added" in out and "removed by quality#2: too_long" in out
    assert (tmp_path / "diff.html").read_text(encoding="utf-8").count("<tr>") > 3


def test_diff_of_an_unknown_version_is_one_clear_line(flagship_store: Store) -> None:
    result = subprocess.run(
        [CURATE, "datasets", "diff", "support@0", "support@9", "--store", str(flagship_store.root)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 1
    assert "version 9 does not exist" in result.stderr and "Traceback" not in result.stderr
