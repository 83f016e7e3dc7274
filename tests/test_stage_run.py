"""The engine boundary: `Stage.run` times, counts and wraps errors; engines only choose where `apply` runs."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from curate.engines import get_engine
from curate.errors import ConfigError, StageError
from curate.stages.base import Stage, StageConfig, StageContext, StageResult


class _DropOdd(Stage):
    name = "drop_odd"
    Config = StageConfig

    def apply(self, frame: pl.DataFrame, ctx: StageContext) -> StageResult:
        return StageResult.partition(frame, pl.col("n") % 2 == 0, reason="odd_number", stats={"seen": frame.height})


class _Broken(Stage):
    name = "broken"
    Config = StageConfig

    def apply(self, frame: pl.DataFrame, ctx: StageContext) -> StageResult:
        raise ZeroDivisionError("division by zero")


def _ctx(stage_id: str) -> StageContext:
    return StageContext(dataset="numbers", kind="sft", base_dir=Path("."), stage_id=stage_id, pipeline="p/numbers.yaml")


def test_stage_run_returns_one_stats_row_with_counts_reasons_and_time() -> None:
    frame = pl.DataFrame({"id": [str(i) for i in range(5)], "n": range(5)})
    result, stats = _DropOdd(StageConfig()).run(frame, _ctx("drop_odd#2"))
    assert result.kept["n"].to_list() == [0, 2, 4]
    assert (stats.stage, stats.name, stats.rows_in, stats.rows_kept, stats.rows_removed) == ("drop_odd#2", "drop_odd", 5, 3, 2)
    assert stats.removed_by_reason == {"odd_number": 2}
    assert stats.extra == {"seen": 5} and stats.seconds >= 0 and stats.balanced


def test_stage_run_names_stage_rows_and_pipeline_when_apply_fails() -> None:
    frame = pl.DataFrame({"id": ["a"], "n": [1]})
    with pytest.raises(StageError, match=r"Stage 'broken' failed on 1 sft rows of pipeline p/numbers.yaml: "
                       r"ZeroDivisionError: division by zero\. Nothing was committed; 'numbers' is unchanged\."):
        _Broken(StageConfig()).run(frame, _ctx("broken"))


def test_local_engine_runs_apply_in_this_process_through_stage_run() -> None:
    frame = pl.DataFrame({"id": ["a", "b"], "n": [1, 2]})
    result, stats = get_engine("local").run_stage(_DropOdd(StageConfig()), frame, _ctx("drop_odd"))
    assert result.kept["id"].to_list() == ["b"] and stats.removed_by_reason == {"odd_number": 1}


def test_unknown_engine_is_a_config_error_naming_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"Unknown engine 'spark'; use one of local, ray"):
        get_engine("spark")
