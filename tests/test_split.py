"""The split stage: stratified, seeded, independent of input order, removes nothing."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from curate.records import build_frame
from curate.stages import StageContext
from curate.stages.split import Split, SplitConfig


def _frame() -> pl.DataFrame:
    records = [
        {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}], "label": "A" if i < 80 else "B"}
        for i in range(100)
    ]
    return build_frame("sft", records)[0].with_columns(split=pl.lit(None, pl.String))


def _apply(frame: pl.DataFrame, **cfg: object) -> pl.DataFrame:
    ctx = StageContext(dataset="t", kind="sft", base_dir=Path("."))
    result = Split(SplitConfig(**cfg)).apply(frame, ctx)
    assert result.removed.height == 0 and result.kept.height == frame.height
    return result.kept


def test_stratified_split_keeps_label_proportions() -> None:
    kept = _apply(_frame(), test=0.1, validation=0.1)
    counts = dict(kept.group_by("label", "split").len().select(pl.concat_str("label", "split"), "len").iter_rows())
    assert counts == {"Atest": 8, "Avalidation": 8, "Atrain": 64, "Btest": 2, "Bvalidation": 2, "Btrain": 16}


def test_same_seed_gives_same_split_whatever_the_input_order() -> None:
    frame = _frame()
    a = _apply(frame, seed=3).select("id", "split").sort("id")
    b = _apply(frame.reverse(), seed=3).select("id", "split").sort("id")
    c = _apply(frame, seed=4).select("id", "split").sort("id")
    assert a.equals(b)
    assert not a.equals(c)
