"""``balance``: cap, floor or temperature-sample the rows per value of a column (default ``label``).

* ``cap: N``: at most N rows per label; the rest are removed with reason ``over_cap`` (they stay
  in the store, so a later version can restore them). Kept rows are the best by ``score`` when
  set, else a seeded random choice that does not depend on input order.
* ``floor: N``: at least N rows per label, by repeating the label's rows in the same order.
  Repeats are new rows (counted in ``added``) with the original's ``id`` in a ``repeat_of``
  column (null for original rows).
* ``temperature: T``: per-label target ∝ n^(1/T) (T = 1 keeps proportions, large T flattens
  them), scaled to ``size`` rows in total; labels above target are cut (``over_cap``), labels below
  are repeated.

Rows whose label is null are passed through. When the frame already has splits, only the
``split`` named in the config is balanced, so held-out rows are never repeated or cut.
The label distribution before and after goes into the stage stats and the log.
"""

from __future__ import annotations

import json
import logging

import polars as pl
from pydantic import Field, model_validator

from curate.errors import StageError
from curate.stages.base import Stage, StageConfig, StageContext, StageResult
from curate.stages.registry import register

__all__ = ["Balance", "BalanceConfig"]

logger = logging.getLogger(__name__)


class BalanceConfig(StageConfig):
    """Per-label limits: `cap` and / or `floor`, or `temperature` on its own."""

    by: str = Field("label", description="Column whose values are balanced.")
    cap: int | None = Field(None, ge=1, description="Most rows kept per value; `None`: no cap.")
    floor: int | None = Field(None, ge=1, description="Fewest rows per value, by repetition; `None`: no floor.")
    temperature: float | None = Field(
        None, gt=0.0, description="Sample with p ∝ n^(1/T); `None`: off. Exclusive with `cap` and `floor`."
    )
    size: int | None = Field(None, ge=1, description="Total rows after temperature sampling; `None`: as many as came in.")
    score: str | None = Field(
        None, description="Column to rank rows by (highest kept first, e.g. `quality_score`); `None`: seeded random order."
    )
    seed: int = Field(0, description="Seed of the random order used when `score` is not set.")
    split: str | None = Field(
        "train", description="When rows already have splits, balance only this one; `None` balances every row."
    )

    @model_validator(mode="after")
    def _one_policy(self) -> BalanceConfig:
        if self.temperature is not None and (self.cap is not None or self.floor is not None):
            raise ValueError("use either `temperature` or `cap`/`floor`, not both")
        if self.temperature is None and self.cap is None and self.floor is None:
            raise ValueError("set `cap`, `floor` or `temperature` (for example `cap: 500`)")
        if self.cap is not None and self.floor is not None and self.floor > self.cap:
            raise ValueError(f"floor ({self.floor}) must not exceed cap ({self.cap})")
        if self.size is not None and self.temperature is None:
            raise ValueError("`size` only applies with `temperature`")
        return self


def _distribution(frame: pl.DataFrame, by: str) -> dict[str, int]:
    counts = frame.group_by(by).len().sort(["len", by], descending=[True, False])
    return {str(k): int(n) for k, n in counts.iter_rows()}


@register
class Balance(Stage):
    """Caps, floors or temperature-samples rows per label; see :class:`BalanceConfig`."""

    name = "balance"
    Config = BalanceConfig

    def targets(self, counts: dict[str, int], total: int) -> dict[str, int]:
        """Rows wanted per label, from the rows there are."""
        cfg = self.config
        if cfg.temperature is not None:
            weights = {k: n ** (1.0 / cfg.temperature) for k, n in counts.items()}
            scale = (cfg.size or total) / sum(weights.values())
            return {k: max(1, round(w * scale)) for k, w in weights.items()}
        return {k: max(min(n, cfg.cap or n), cfg.floor or 0) for k, n in counts.items()}

    def apply(self, frame: pl.DataFrame, ctx: StageContext) -> StageResult:
        cfg = self.config
        for column in (cfg.by, cfg.score):
            if column is not None and column not in frame.columns:
                raise StageError(f"{ctx.stage_id or 'balance'}: column {column!r} is not in the data; columns are "
                                 f"{', '.join(frame.columns)}. Set `by` / `score` to one of them.")
        work = frame.with_row_index("__row")
        active = pl.col(cfg.by).is_not_null()
        if cfg.split is not None and "split" in frame.columns and frame["split"].is_not_null().any():
            active = active & (pl.col("split") == cfg.split)
        chosen, passed = work.filter(active), work.filter(~active)
        before = _distribution(chosen, cfg.by)
        target = self.targets(before, chosen.height)
        order = [pl.col(cfg.score).fill_nan(None), pl.col("id"), pl.col("__row")] if cfg.score else [
            pl.col("id").hash(seed=cfg.seed), pl.col("id"), pl.col("__row")]
        ranked = chosen.with_columns(__key=pl.col(cfg.by).cast(pl.String)).sort(
            order, descending=[bool(cfg.score), False, False], nulls_last=True
        ).with_columns(__rank=pl.int_range(pl.len()).over("__key"), __n=pl.len().over("__key"))
        ranked = ranked.with_columns(__target=pl.col("__key").replace_strict(target, return_dtype=pl.Int64))
        keep = pl.col("__rank") < pl.col("__target")
        rule = "temperature" if cfg.temperature is not None else "cap"
        detail = pl.concat_str(
            pl.lit(f'{{"by": {json.dumps(cfg.by)}, "rule": "{rule}", "label": '),
            pl.col("__key").map_elements(json.dumps, return_dtype=pl.String),
            pl.lit(', "limit": '), pl.col("__target"), pl.lit(', "count": '), pl.col("__n"),
            pl.lit(', "rank": '), pl.col("__rank"), pl.lit("}"),
        )
        result = StageResult.partition(ranked, keep, reason="over_cap", detail=detail)
        repeats = _repeats(ranked)
        helper = ["__row", "__key", "__rank", "__n", "__target"]
        kept = pl.concat([result.kept, repeats], how="diagonal_relaxed") if repeats.height else result.kept
        if repeats.height:
            kept = kept.with_columns(repeat_of=pl.col("repeat_of").cast(pl.String))
        kept = pl.concat([kept, passed], how="diagonal_relaxed").sort("__row", maintain_order=True).drop(helper, strict=False)
        after = _distribution(kept.filter(pl.col(cfg.by).is_not_null() & pl.col(cfg.by).is_in(list(before))), cfg.by)
        logger.info("balance by %s: before %s; after %s", cfg.by, before, after)
        stats = {"by": cfg.by, "rule": rule, "before": before, "after": after, "targets": target,
                 "passed_through": passed.height}
        return StageResult(kept=kept, removed=result.removed.drop(helper), stats=stats, added=repeats.height)


def _repeats(ranked: pl.DataFrame) -> pl.DataFrame:
    """Copies of rows for labels below target: the label's rows cycled in rank order."""
    short = ranked.filter(pl.col("__target") > pl.col("__n"))
    if short.is_empty():
        return short.with_columns(repeat_of=pl.lit(None, pl.String))
    extra = pl.col("__target") - pl.col("__n")
    # row of rank r is repeated extra // n times, plus once more when r < extra % n
    copies = extra // pl.col("__n") + (extra % pl.col("__n") > pl.col("__rank")).cast(pl.Int64)
    expanded = short.with_columns(__rep=pl.int_ranges(0, copies)).explode("__rep").drop_nulls("__rep")
    return expanded.with_columns(repeat_of=pl.col("id")).drop("__rep")
