"""Row-level helpers the reports share: removal detail as dicts, short texts, words per turn."""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from curate.records import conversation_columns, text_of

__all__ = ["details_of", "short", "texts", "words_per_turn"]

SHORT = 300  # characters of a row's text shown in an example cell


def details_of(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """The ``detail`` JSON of each row as a dict (``{}`` when empty or not an object)."""
    out = []
    for raw in frame["detail"].to_list() if "detail" in frame.columns else [None] * frame.height:
        try:
            value = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            value = {"detail": raw}
        out.append(value if isinstance(value, dict) else {"detail": value})
    return out


def texts(frame: pl.DataFrame, kind: str) -> list[str]:
    """One text per row: ``role: content`` lines of every conversation column."""
    if frame.is_empty():
        return []
    return text_of(frame, kind).to_list()


def short(text: str | None, limit: int = SHORT) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis."""
    text = text or ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def words_per_turn(frame: pl.DataFrame, kind: str) -> pl.Series:
    """Mean whitespace-separated words per message of each row (0 for a row with no messages)."""
    columns = conversation_columns(kind)
    if frame.is_empty() or not columns:
        return pl.Series("words_per_turn", [], dtype=pl.Float64)
    words = text_of(frame, kind).str.count_matches(r"\S+")
    turns = frame.select(pl.sum_horizontal(pl.col(c).list.len().fill_null(0) for c in columns)).to_series()
    return (words / turns.clip(lower_bound=1)).alias("words_per_turn")
