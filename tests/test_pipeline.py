"""End-to-end runs of the local engine into a real Delta store."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

import curate
from curate.errors import InputError, StageError
from curate.pipeline import run_pipeline
from curate.store import Store
from helpers import SUPPORT_ROWS, write_jsonl, write_pipeline


@pytest.fixture
def pipeline(tmp_path: Path) -> Path:
    write_jsonl(tmp_path / "data.jsonl", SUPPORT_ROWS)
    return write_pipeline(tmp_path)


def test_every_input_row_is_kept_or_removed_with_stage_and_reason(pipeline: Path, store_root: Path) -> None:
    summary = run_pipeline(pipeline, store_root=store_root)
    rows = Store(store_root).read("support@0")
    assert rows.height == len(SUPPORT_ROWS)
    removed = rows.filter(pl.col("split").is_null())
    assert removed.select("removed_by", "reason").unique().rows() == [("dedup_exact", "exact_duplicate")]
    assert removed.height == 2  # the identical row and the case/whitespace variant
    first = rows.filter(pl.col("split").is_not_null()).row(0, named=True)
    assert {json.loads(d)["duplicate_of"] for d in removed["detail"]} == {first["id"]}
    assert [(s.stage, s.rows_in, s.rows_kept, s.rows_removed) for s in summary.stages] == [
        ("convert", 8, 8, 0),
        ("dedup_exact", 8, 6, 2),
        ("split", 6, 6, 0),
    ]


def test_second_run_makes_next_version_with_same_kept_ids(pipeline: Path, store_root: Path) -> None:
    first = run_pipeline(pipeline, store_root=store_root)
    second = run_pipeline(pipeline, store_root=store_root)
    assert (first.version, second.version) == (0, 1)
    store = Store(store_root)
    kept = [store.kept(f"support@{v}").select("id", "split").sort("id") for v in (0, 1)]
    assert kept[0].equals(kept[1])
    log = store.history("support")
    assert [v.version for v in log] == [0, 1]
    assert all(v.lineage["pipeline"]["path"] == str(pipeline) for v in log)
    assert log[1].lineage["inputs"][0]["path"] == "data.jsonl"
    assert len(log[1].lineage["inputs"][0]["sha256"]) == 64


def test_load_returns_kept_splits_as_datasetdict(pipeline: Path, store_root: Path) -> None:
    run_pipeline(pipeline, store_root=store_root)
    splits = curate.load("support@0", store=store_root)
    assert sum(len(d) for d in splits.values()) == 6
    row = splits["train"][0]
    assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
    assert "removed_by" not in splits["train"].column_names


def test_malformed_jsonl_fails_naming_line_and_keeps_previous_version(pipeline: Path, store_root: Path) -> None:
    run_pipeline(pipeline, store_root=store_root)
    data = pipeline.parent / "data.jsonl"
    data.write_text(data.read_text() + '{"instruction": "broken", "response": \n', encoding="utf-8")
    with pytest.raises(InputError, match=r"data\.jsonl.*line 9"):
        run_pipeline(pipeline, store_root=store_root)
    store = Store(store_root)
    assert store.latest_version("support") == 0
    assert store.read("support").height == len(SUPPORT_ROWS)


def test_missing_mapping_column_names_it_and_lists_available(tmp_path: Path, store_root: Path) -> None:
    write_jsonl(tmp_path / "data.jsonl", [{"question": "a?", "answer": "b", "category": "X"}])
    pipeline = write_pipeline(tmp_path)
    with pytest.raises(InputError, match=r"instruction.*question"):
        run_pipeline(pipeline, store_root=store_root)
    assert Store(store_root).names() == []


def test_rows_that_do_not_fit_the_schema_are_removed_by_convert(tmp_path: Path, store_root: Path) -> None:
    rows = [
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]},
        {"messages": []},
        {"messages": [{"role": "narrator", "content": "once upon a time"}, {"role": "assistant", "content": "x"}]},
    ]
    write_jsonl(tmp_path / "chat.jsonl", rows)
    (tmp_path / "p.yaml").write_text("source: {path: chat.jsonl, format: messages}\noutput: chats\n")
    summary = run_pipeline(tmp_path / "p.yaml", store_root=store_root)
    assert summary.stages[0].removed_by_reason == {"empty_messages": 1, "unknown_role": 1}
    removed = Store(store_root).read("chats").filter(pl.col("removed_by") == "convert")
    assert sorted(removed["reason"]) == ["empty_messages", "unknown_role"]


def test_dataset_reference_source_records_parent_version(pipeline: Path, store_root: Path) -> None:
    run_pipeline(pipeline, store_root=store_root)
    child = pipeline.parent / "child.yaml"
    child.write_text("source: {path: support@0}\nstages:\n  - split: {test: 0.5, validation: 0.0}\noutput: support-v2\n")
    summary = run_pipeline(child, store_root=store_root)
    info = Store(store_root).info("support-v2@0")
    assert info.lineage["parents"] == [{"dataset": "support", "version": 0, "rows": 6}]
    assert summary.stages[0].rows_in == 6


def test_failing_stage_commits_nothing(pipeline: Path, store_root: Path) -> None:
    run_pipeline(pipeline, store_root=store_root)
    # valid config, but the data decides: stratifying on a list column fails at run time
    bad = write_pipeline(pipeline.parent, stages="  - dedup_exact: {}\n  - split: {stratify_by: messages}\n")
    with pytest.raises(StageError, match="stratify_by column 'messages'"):
        run_pipeline(bad, store_root=store_root)
    assert Store(store_root).latest_version("support") == 0


def test_hf_datasets_folder_source_is_read_and_hashed(tmp_path: Path, store_root: Path) -> None:
    import datasets

    rows = {"instruction": ["a question?", "another one?"], "response": ["an answer.", "a reply."], "category": ["X", "Y"]}
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "hf"))
    pipeline = write_pipeline(tmp_path, source="hf", stages="")
    run_pipeline(pipeline, store_root=store_root)
    info = Store(store_root).info("support")
    assert info.lineage["inputs"][0]["path"] == "hf"
    assert len(info.lineage["inputs"][0]["sha256"]) == 64
    assert info.lineage["rows"]["kept"] == 2
