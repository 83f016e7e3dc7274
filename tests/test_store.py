"""The Delta store: versions, references, name validation and the accounting check."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from curate.errors import StoreError
from curate.records import build_frame
from curate.stats import StageStats
from curate.store import Store, parse_ref


def _frame(n: int) -> pl.DataFrame:
    records = [
        {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}], "label": "L"}
        for i in range(n)
    ]
    valid, _ = build_frame("sft", records)
    return valid.with_columns(split=pl.lit("train"))


def _commit(store: Store, kept: pl.DataFrame, *, claimed_kept: int | None = None) -> int:
    removed = kept.head(0).drop("split").with_columns(
        removed_by=pl.lit(None, pl.String), reason=pl.lit(None, pl.String), detail=pl.lit(None, pl.String)
    )
    n = kept.height if claimed_kept is None else claimed_kept
    stats = [StageStats("convert", "convert", rows_in=n, rows_added=0, rows_kept=n, rows_removed=0)]
    return store.commit("ds", kind="sft", kept=kept, removed=removed, stages=stats, lineage={"pipeline": {}})


def test_each_commit_is_a_new_version_readable_by_number(store_root: Path) -> None:
    store = Store(store_root)
    assert _commit(store, _frame(3)) == 0
    assert _commit(store, _frame(5)) == 1
    assert store.read("ds@0").height == 3
    assert store.read("ds").height == 5
    assert store.resolve("ds") == ("ds", 1)


def test_commit_refuses_rows_that_do_not_add_up(store_root: Path) -> None:
    store = Store(store_root)
    with pytest.raises(StoreError, match="Refusing to commit"):
        _commit(store, _frame(3), claimed_kept=4)
    assert store.names() == []


@pytest.mark.parametrize("ref", ["../evil", "a/b", "x@-1", "", "..", "name@v2", "nl\n", "ds@1\n"])
def test_references_that_are_not_plain_names_are_rejected(ref: str) -> None:
    with pytest.raises(StoreError, match="not a dataset reference"):
        parse_ref(ref)


def test_missing_dataset_and_version_errors_say_what_exists(store_root: Path) -> None:
    store = Store(store_root)
    _commit(store, _frame(2))
    with pytest.raises(StoreError, match=r"No dataset named 'nope'.*datasets: ds"):
        store.read("nope")
    with pytest.raises(StoreError, match=r"versions 0\.\.0; version 7 does not exist"):
        store.read("ds@7")


def test_stored_table_has_record_then_store_columns(store_root: Path) -> None:
    store = Store(store_root)
    _commit(store, _frame(2))
    assert store.read("ds").columns == ["id", "source", "meta", "messages", "label", "split", "removed_by", "reason", "detail"]
