"""``split``: assign kept rows to train / validation / test, seeded and optionally stratified."""

from __future__ import annotations

import numpy as np
import polars as pl
from pydantic import Field, model_validator

from curate.errors import StageError
from curate.stages.base import Stage, StageConfig, StageContext, StageResult
from curate.stages.registry import register


class SplitConfig(StageConfig):
    """Fractions of rows held out; the rest is ``train``."""

    test: float = Field(0.1, ge=0.0, lt=1.0, description="Fraction of rows in the held-out `test` split.")
    validation: float = Field(0.1, ge=0.0, lt=1.0, description="Fraction of rows in `validation`.")
    stratify_by: str | None = Field(
        "label",
        description="Column whose values keep their proportions in every split; rows where it is "
        "null form their own group. `None` splits without stratification. The default `label` "
        "falls back to no stratification for kinds without a label column.",
    )
    seed: int = Field(0, description="Seed of the shuffle; the same seed and rows give the same splits.")

    @model_validator(mode="after")
    def _fractions_leave_train(self) -> SplitConfig:
        if self.test + self.validation >= 1.0:
            raise ValueError(f"test + validation must be below 1 so train is not empty, got {self.test + self.validation}")
        return self


def _quotas(sizes: np.ndarray, fraction: float, capacity: np.ndarray) -> np.ndarray:
    """Rows per group for one held-out split: ``round(total * fraction)`` rows overall, shared
    between groups in proportion to their size by largest remainder (so small groups still
    contribute and the overall fraction is exact), never more than a group's ``capacity``."""
    target = min(int(round(sizes.sum() * fraction)), int(capacity.sum()))
    exact = sizes * fraction
    quota = np.minimum(np.floor(exact).astype(int), capacity)
    order = np.argsort(-(exact - np.floor(exact)), kind="stable")
    while quota.sum() < target:
        for g in order:
            if quota.sum() >= target:
                break
            if quota[g] < capacity[g]:
                quota[g] += 1
    return quota


@register
class Split(Stage):
    """Deterministic split: rows are ordered by id inside each group before shuffling, so input
    order does not matter. Removes nothing."""

    name = "split"
    Config = SplitConfig

    def _stratify_column(self, frame: pl.DataFrame) -> str | None:
        by = self.config.stratify_by
        if by is None or (by == "label" and by not in frame.columns):
            return None
        if by not in frame.columns:
            raise StageError(f"split: stratify_by column {by!r} is not in the data; columns are {', '.join(frame.columns)}.")
        if frame.schema[by].is_nested():
            raise StageError(
                f"split: stratify_by column {by!r} holds {frame.schema[by]} values; stratify by a scalar "
                "column such as `label`."
            )
        return by

    def apply(self, frame: pl.DataFrame, ctx: StageContext) -> StageResult:
        cfg = self.config
        by = self._stratify_column(frame)
        rng = np.random.default_rng(cfg.seed)
        order = frame.with_row_index("__row").sort([by, "id", "__row"] if by else ["id", "__row"], nulls_last=True)
        group = order.get_column(by).rle_id().to_numpy() if by else np.zeros(order.height, dtype=np.int64)
        sizes = np.bincount(group)
        n_test = _quotas(sizes, cfg.test, sizes)
        n_val = _quotas(sizes, cfg.validation, sizes - n_test)
        labels = np.empty(order.height, dtype=object)
        for g, start in enumerate(np.cumsum(sizes) - sizes):
            part = ["test"] * n_test[g] + ["validation"] * n_val[g] + ["train"] * (sizes[g] - n_test[g] - n_val[g])
            labels[start : start + sizes[g]] = rng.permutation(np.array(part, dtype=object))
        assigned = order.with_columns(split=pl.Series(labels, dtype=pl.String)).sort("__row").drop("__row")
        counts = assigned.group_by("split").len().sort("split")
        stats = {"stratified_by": by, "rows_per_split": dict(zip(counts["split"], counts["len"], strict=True))}
        return StageResult.partition(assigned, pl.lit(True), reason="", stats=stats)
