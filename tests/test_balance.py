"""balance on BANKING77 (77 intents, 35 to 187 rows each) and on small frames built here."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from pydantic import ValidationError

from curate.records import build_frame
from curate.stages.balance import Balance, BalanceConfig
from curate.stages.base import StageContext

CTX = StageContext(dataset="banking", kind="sft", base_dir=Path("."), stage_id="balance")


@pytest.fixture(scope="module")
def banking(shared_data: Path) -> pl.DataFrame:
    df = pl.read_csv(shared_data / "banking77" / "train.csv", infer_schema=False)
    frame, invalid = build_frame(
        "sft",
        [{"messages": [{"role": "user", "content": t}, {"role": "assistant", "content": c}], "label": c}
         for t, c in df.iter_rows()],
    )
    assert invalid.is_empty() and frame.height == 10_003
    return frame


def test_cap_keeps_at_most_n_per_label_with_exact_accounting(banking: pl.DataFrame) -> None:
    before = banking.group_by("label").len()
    result = Balance(BalanceConfig(cap=60)).apply(banking, CTX)
    after = result.kept.group_by("label").len()
    assert after["len"].max() <= 60
    expected = before.select(pl.col("len").clip(upper_bound=60)).sum().item()
    assert result.kept.height == expected
    assert result.kept.height + result.removed.height == banking.height and result.added == 0
    assert set(result.removed["reason"]) == {"over_cap"}
    joined = before.join(after, on="label", suffix="_kept")
    assert joined["len_kept"].equals(joined["len"].clip(upper_bound=60), check_names=False)
    assert result.stats["before"] == dict(before.sort("len", "label", descending=[True, False]).iter_rows())
    assert max(result.stats["after"].values()) == 60 and min(result.stats["after"].values()) == before["len"].min()
    detail = json.loads(result.removed["detail"][0])
    assert detail["rule"] == "cap" and detail["limit"] == 60 and detail["by"] == "label"
    assert set(result.kept["id"]).isdisjoint(result.removed["id"])


def test_cap_is_seeded_and_independent_of_input_order(banking: pl.DataFrame) -> None:
    stage = Balance(BalanceConfig(cap=40, seed=3))
    a = stage.apply(banking, CTX).kept["id"].sort()
    b = stage.apply(banking.reverse(), CTX).kept["id"].sort()
    c = Balance(BalanceConfig(cap=40, seed=4)).apply(banking, CTX).kept["id"].sort()
    assert a.equals(b) and not a.equals(c)


def test_cap_by_score_keeps_the_highest_scores() -> None:
    frame = build_frame("sft", [
        {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}], "label": "x"}
        for i in range(5)
    ])[0].with_columns(quality_score=pl.Series([0.1, 0.9, 0.5, None, 0.7]))
    result = Balance(BalanceConfig(cap=2, score="quality_score")).apply(frame, CTX)
    assert sorted(result.kept["quality_score"].to_list()) == [0.7, 0.9]
    assert result.removed["quality_score"].to_list()[-1] is None, "rows without a score go last"


def test_floor_repeats_rows_and_counts_them_as_added(banking: pl.DataFrame) -> None:
    counts = dict(banking.group_by("label").len().iter_rows())
    result = Balance(BalanceConfig(floor=100)).apply(banking, CTX)
    assert result.added == sum(max(0, 100 - n) for n in counts.values())
    assert result.kept.height == banking.height + result.added and result.removed.is_empty()
    assert result.kept.group_by("label").len()["len"].min() == 100
    repeats = result.kept.filter(pl.col("repeat_of").is_not_null())
    assert repeats.height == result.added
    assert repeats["repeat_of"].equals(repeats["id"]) and set(repeats["id"]) <= set(banking["id"])


def test_temperature_flattens_the_distribution(banking: pl.DataFrame) -> None:
    result = Balance(BalanceConfig(temperature=1000.0, size=7700)).apply(banking, CTX)
    assert set(result.stats["after"].values()) == {100}
    assert banking.height + result.added == result.kept.height + result.removed.height == 7700 + result.removed.height
    same = Balance(BalanceConfig(temperature=1.0)).apply(banking, CTX)
    assert same.removed.height <= 77 and same.added <= 77  # T = 1 keeps proportions (rounding only)


def test_only_the_train_split_is_balanced(banking: pl.DataFrame) -> None:
    split = banking.with_columns(split=pl.when(pl.int_range(pl.len()) % 5 == 0).then(pl.lit("test")).otherwise(pl.lit("train")))
    result = Balance(BalanceConfig(cap=30, floor=30)).apply(split, CTX)
    assert set(result.removed["split"]) == {"train"}
    assert result.kept.filter(pl.col("split") == "test").height == split.filter(pl.col("split") == "test").height
    assert set(result.kept.filter(pl.col("split") == "train").group_by("label").len()["len"]) == {30}
    assert result.stats["passed_through"] == split.filter(pl.col("split") == "test").height


def test_config_errors_say_what_to_set() -> None:
    with pytest.raises(ValidationError, match="set `cap`, `floor` or `temperature`"):
        BalanceConfig()
    with pytest.raises(ValidationError, match="either `temperature` or `cap`"):
        BalanceConfig(cap=3, temperature=2.0)
    with pytest.raises(ValidationError, match=r"floor \(9\) must not exceed cap \(3\)"):
        BalanceConfig(cap=3, floor=9)


def test_unknown_column_names_the_stage_and_column(banking: pl.DataFrame) -> None:
    from curate.errors import StageError

    with pytest.raises(StageError, match="balance: column 'intent' is not in the data"):
        Balance(BalanceConfig(by="intent", cap=3)).apply(banking, CTX)
