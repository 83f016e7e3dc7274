"""``dedup_exact``: drop rows whose normalised conversation text equals an earlier row's.

The normalised text of a row is its compared messages' contents joined, whitespace runs folded
to one space, ends stripped and (by default) lowercased. It is built per distinct message, not
per row: datasets repeat turns (system prompts, canned answers) far more often than whole
conversations, so each distinct content is folded and lowercased once and the results are
joined with one space. That is the same text as normalising the joined conversation: folding
turns every whitespace run, message ends included, into one space, so message boundaries only
matter through messages that are empty once folded, and those are dropped.

Equal values (contents, then row texts) are found by their 64-bit hashes and every match is
then compared as values; one collision sends that level to the values themselves, so a hash
never decides alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import polars as pl
from pydantic import Field

from curate.records import conversation_columns
from curate.stages.base import Stage, StageConfig, StageContext, StageResult
from curate.stages.registry import register

__all__ = ["DedupExact", "DedupExactConfig", "first_equal", "per_distinct"]

# Runs of 2+ whitespace or one non-space whitespace -> " ": the same as r"\s+" -> " ",
# without rewriting every single space (most of the text).
_RUNS = r"\s{2,}|[^\S ]"
# A content that folding or stripping would change.
_UNFOLDED = r"\s{2,}|[^\S ]|^ | $"


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
        text = self.texts(frame, ctx.kind)
        origin = first_equal(text)
        kept = origin == _positions(origin)
        duplicate_of = pl.concat_str(pl.lit('{"duplicate_of": "'), pl.lit(frame["id"].gather(origin)), pl.lit('"}'))
        # A row with no text (a null message list) duplicates the first such row, with no detail.
        detail = pl.when(pl.lit(text.is_not_null())).then(duplicate_of)
        return StageResult.partition(frame, kept, reason="exact_duplicate", detail=detail)

    def texts(self, frame: pl.DataFrame, kind: str) -> pl.Series:
        """The normalised text of every row; null where a compared message list is null."""
        contents = frame.select(pl.concat_list([self._contents(c) for c in conversation_columns(kind)])).to_series()
        hashes = contents.list.eval(pl.element().hash())
        sizes, firsts = contents.explode().str.len_bytes(), hashes.explode().is_first_distinct()
        if sizes.filter(~firsts).sum() * 2 < sizes.sum():
            # Turns rarely repeat: normalising each row's text once is cheaper than mapping.
            return self._normalised(contents.list.join(" "))
        normal = per_distinct(contents, self._normalised, hashes=hashes)
        if (normal.explode() == "").any():
            normal = normal.list.eval(pl.element().filter(pl.element() != ""))
        return normal.list.join(" ")

    def _contents(self, column: str) -> pl.Expr:
        message = pl.element()
        if self.config.text != "all":
            message = message.filter(message.struct.field("role") == self.config.text)
        return pl.col(column).list.eval(message.struct.field("content"))

    def _normalised(self, contents: pl.Series) -> pl.Series:
        """Whitespace folded and stripped (only where needed), then lowercased if configured."""
        unfolded = contents.str.contains(_UNFOLDED).fill_null(False)
        if unfolded.any():
            where = unfolded.arg_true()
            folded = contents.gather(where).str.replace_all(_RUNS, " ").str.strip_chars()
            contents = contents.scatter(where, folded)
        return contents.str.to_lowercase() if self.config.lowercase else contents


def per_distinct(
    lists: pl.Series, function: Callable[[pl.Series], pl.Series], *, hashes: pl.Series | None = None
) -> pl.Series:
    """``function`` applied to every element of a list column, computed once per distinct element.

    Parameters
    ----------
    lists
        A list column.
    function
        Maps a series of elements to a series of results, element for element.
    hashes
        ``lists`` with every element hashed (``None``: ``element.hash()``). Equal hashes are
        checked as values, so a collision costs time, never a wrong result.
    """
    keys = lists.list.eval(pl.element().hash()) if hashes is None else hashes
    values = lists.explode()
    origin = _first_of_key(keys.explode())
    if not _same(values, origin):
        keys, origin = lists, _first_of_key(values)
    firsts = (origin == _positions(origin)).arg_true()
    results = function(values.gather(firsts))
    return keys.list.eval(pl.element().replace_strict(keys.explode().gather(firsts), results))


def first_equal(values: pl.Series) -> pl.Series:
    """For every row, the index of the first row whose value equals it (nulls are equal).

    Found by 64-bit hashes, then checked as values: if two different values share a hash, found
    by the values themselves.
    """
    origin = _first_of_key(values.hash())
    return origin if _same(values, origin) else _first_of_key(values)


def _first_of_key(keys: pl.Series) -> pl.Series:
    firsts = keys.is_first_distinct().arg_true()
    return keys.replace_strict(keys.gather(firsts), firsts)


def _positions(like: pl.Series) -> pl.Series:
    return pl.int_range(len(like), dtype=like.dtype, eager=True)


def _same(values: pl.Series, origin: pl.Series) -> bool:
    """Whether every value equals the value at its ``origin`` (only rows after their origin differ)."""
    later = (origin != _positions(origin)).arg_true()
    return values.gather(origin.gather(later)).eq_missing(values.gather(later)).all()
