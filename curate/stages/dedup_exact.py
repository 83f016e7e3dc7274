"""``dedup_exact``: drop rows whose normalised conversation text equals an earlier row's.

The normalised text of a row is its compared messages' contents joined, whitespace runs folded
to one space, ends stripped and (by default) lowercased. It is built per distinct message:
datasets repeat turns (system prompts, canned answers), so each distinct content is folded and
lowercased once, and a row's results are joined with one space. That is the same text as
normalising the joined conversation: folding turns every whitespace run, message ends
included, into one space, so message boundaries only matter through messages that are empty
once folded, and those are dropped.

Equal values (contents, then row texts) are found by their 64-bit hashes and every match is
then compared as values; one collision sends that level to the values themselves, so a hash
never decides alone. Row texts are built, hashed and dropped 100,000 rows at a time, so the
stage never holds every row's text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import polars as pl
import pyarrow as pa
from pydantic import Field

from curate.records import conversation_columns
from curate.stages.base import Stage, StageConfig, StageContext, StageResult
from curate.stages.registry import register

__all__ = ["DedupExact", "DedupExactConfig", "first_equal"]

# Runs of 2+ whitespace or one non-space whitespace -> " ": the same as r"\s+" -> " ",
# without rewriting every single space (most of the text).
_RUNS = r"\s{2,}|[^\S ]"
# A text that folding or stripping would change.
_UNFOLDED = r"\s{2,}|[^\S ]|^ | $"
_CHUNK_ROWS = 100_000

Texts = Callable[[pl.Series], pl.Series]


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
        text = self._row_texts(frame, ctx.kind)
        hashes = pl.concat([text(rows).hash() for rows in _chunks(_positions(frame.height))])
        origin = first_equal(hashes, text)
        kept = origin == _positions(frame.height)
        duplicate_of = pl.concat_str(pl.lit('{"duplicate_of": "'), pl.lit(frame["id"].gather(origin)), pl.lit('"}'))
        # A row with no text (a null message list) duplicates the first such row, with no detail.
        no_text = pl.any_horizontal([pl.col(column).is_null() for column in conversation_columns(ctx.kind)])
        return StageResult.partition(frame, kept, reason="exact_duplicate", detail=pl.when(~no_text).then(duplicate_of))

    def texts(self, frame: pl.DataFrame, kind: str) -> pl.Series:
        """The normalised text of every row; null where a compared message list is null."""
        return self._row_texts(frame, kind)(_positions(frame.height))

    def _row_texts(self, frame: pl.DataFrame, kind: str) -> Texts:
        """A function from row numbers to those rows' normalised texts."""
        contents = pl.concat_list([self._contents(c) for c in conversation_columns(kind)])
        # An empty or null list holds one null item (skipped when joined), so every row has one or more.
        no_turn = pl.lit([None], pl.List(pl.String))
        turns = pl.when(contents.list.len() > 0).then(contents).otherwise(no_turn)
        contents, nulls = frame.select(turns.alias("turns"), contents.is_null().alias("nulls")).get_columns()
        flat = contents.explode()
        origin = first_equal(flat.hash(), flat.gather)
        firsts = origin == _positions(len(flat))
        normal = self.normalise(flat.filter(firsts)).gather((firsts.cum_sum() - 1).gather(origin))
        # Messages empty once folded vanish from the text, as in folding the joined conversation.
        normal = pl.select(pl.when(pl.lit(normal) != "").then(pl.lit(normal))).to_series()
        if len(flat) == frame.height:  # one turn a row: the row's text is the turn's
            texts = pl.select(pl.when(pl.lit(nulls)).then(None).otherwise(pl.lit(normal).fill_null(""))).to_series()
            return texts.gather
        lists = _nested(normal, contents.list.len(), nulls=nulls)
        return lambda rows: lists.gather(rows).list.join(" ")

    def _contents(self, column: str) -> pl.Expr:
        message = pl.element()
        if self.config.text != "all":
            message = message.filter(message.struct.field("role") == self.config.text)
        return pl.col(column).list.eval(message.struct.field("content"))

    def normalise(self, texts: pl.Series) -> pl.Series:
        """The stage's exact-duplicate key of each text: whitespace folded and stripped (only where needed), then
        lowercased if configured."""
        unfolded = texts.str.contains(_UNFOLDED).fill_null(False)
        if unfolded.any():
            where = unfolded.arg_true()
            texts = texts.scatter(where, texts.gather(where).str.replace_all(_RUNS, " ").str.strip_chars())
        return texts.str.to_lowercase() if self.config.lowercase else texts


def first_equal(hashes: pl.Series, values_at: Texts) -> pl.Series:
    """For every row, the index of the first row whose value equals it (nulls are equal).

    Parameters
    ----------
    hashes
        One hash per row; equal values must have equal hashes.
    values_at
        The values of the given row numbers. Every row whose hash matches an earlier row's is
        compared with that row (100,000 rows at a time); if any differs (a collision), all
        values are asked for and compared as values.
    """
    origin = _first_of_key(hashes)
    later = (origin != _positions(len(origin))).arg_true()
    if all(values_at(rows).eq_missing(values_at(origin.gather(rows))).all() for rows in _chunks(later)):
        return origin
    return _first_of_key(values_at(_positions(len(hashes))))


def _first_of_key(keys: pl.Series) -> pl.Series:
    rows = pl.DataFrame({"key": keys, "row": _positions(len(keys))})
    return rows.select(pl.col("row").first().over("key")).to_series()


def _positions(n: int) -> pl.Series:
    return pl.int_range(n, dtype=pl.get_index_type(), eager=True)


def _chunks(rows: pl.Series) -> list[pl.Series]:
    return [rows.slice(start, _CHUNK_ROWS) for start in range(0, max(len(rows), 1), _CHUNK_ROWS)]


def _nested(items: pl.Series, lengths: pl.Series, *, nulls: pl.Series) -> pl.Series:
    """``items`` cut into consecutive lists of ``lengths``; a null list where ``nulls`` is true."""
    offsets = np.concatenate([[0], lengths.to_numpy().cumsum(dtype=np.int64)])
    values = items.to_arrow(compat_level=pl.CompatLevel.newest())
    return pl.Series(pa.LargeListArray.from_arrays(offsets, values, mask=nulls.to_arrow()))
