"""``dedup_exact``: drop rows whose normalised conversation text equals an earlier row's."""

from __future__ import annotations

from typing import Literal

import polars as pl
from pydantic import Field

from curate.records import text_of
from curate.stages.base import Stage, StageConfig, StageContext, StageResult
from curate.stages.registry import register


class DedupExactConfig(StageConfig):
    """Exact duplicates after normalisation: lowercase, whitespace runs folded, ends stripped."""

    text: Literal["all", "user", "assistant"] = Field(
        "all", description="Which turns are compared: the whole conversation, user turns or assistant turns."
    )
    lowercase: bool = Field(True, description="Compare case-insensitively.")


@register
class DedupExact(Stage):
    """Keeps the first row of every group of identical texts; the others are removed with
    reason ``exact_duplicate`` and ``detail = {"duplicate_of": <kept id>}``."""

    name = "dedup_exact"
    Config = DedupExactConfig

    def apply(self, frame: pl.DataFrame, ctx: StageContext) -> StageResult:
        roles = None if self.config.text == "all" else [self.config.text]
        # Runs of 2+ whitespace or one non-space whitespace -> " ": the same as r"\s+" -> " ",
        # without rewriting every single space (most of the text).
        text = text_of(frame, ctx.kind, roles=roles).str.replace_all(r"\s{2,}|[^\S ]", " ").str.strip_chars()
        if self.config.lowercase:
            text = text.str.to_lowercase()
        # Equal texts share one hash; is_first_distinct compares the texts themselves.
        keyed = frame.with_columns(__text=text)
        is_first = pl.col("__text").is_first_distinct()
        firsts = keyed.filter(is_first).select("__text", __first=pl.col("id"))
        result = StageResult.partition(keyed, is_first, reason="exact_duplicate", detail=pl.lit(None, pl.String))
        removed = result.removed.join(firsts, on="__text", how="left", maintain_order="left")
        result.removed = removed.with_columns(
            detail=pl.concat_str(pl.lit('{"duplicate_of": "'), pl.col("__first"), pl.lit('"}'))
        ).drop("__text", "__first")
        result.kept = result.kept.drop("__text")
        return result
