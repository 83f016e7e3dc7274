"""Batch converter of ``format: table``: a block's columns through the ``mapping`` -> a :class:`Plan`.

Mirrors :func:`curate.formats.table.table_record` when every mapped column holds text, whole
numbers, booleans or nulls (a CSV always does: its cells are read as text); a float, a date or a
nested value in a mapped column, or a ``margin`` that is not plainly a number, sends the block
row by row.
"""

from __future__ import annotations

import polars as pl

from curate.formats._batch import SIMPLE_TYPES, JsonFacts, Plan, TypedFacts, json_value, message, text_column

__all__ = ["table_plan"]

_MESSAGE_ROLES = {"user": "user", "assistant": "assistant", "prompt": "user", "chosen": "assistant",
                  "rejected": "assistant", "completion": "assistant"}  # fmt: skip
# A number as Python's float() and polars' cast read it alike.
_NUMBER = r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$"


def _cell_text(frame: pl.DataFrame, facts: JsonFacts | TypedFacts, column: str) -> bool:
    """Whether a column reads as text the way the row path writes it (a JSONL number never does)."""
    if column not in frame.columns:
        return True  # every row lacks it: null
    dtype = frame[column].dtype
    return dtype in SIMPLE_TYPES and (dtype != pl.String or text_column(frame, facts, column, required=False))


def table_plan(
    frame: pl.DataFrame, facts: JsonFacts | TypedFacts, *, kind: str, mapping: dict[str, str]
) -> Plan | None:
    """The plan of a block of table rows, or ``None`` to read it row by row."""
    if not all(_cell_text(frame, facts, column) for column in mapping.values()):
        return None
    absent = pl.lit(None, pl.String)
    get = {key: pl.col(column) if column in frame.columns else absent for key, column in mapping.items()}
    if "system" in get and frame[mapping["system"]].dtype not in (pl.String, pl.Null):
        return None  # a number's truth is not its text's
    text = {key: get[key].cast(pl.String).fill_null("") for key in _MESSAGE_ROLES if key in get}
    turn = {key: message(role, text[key]) for key, role in _MESSAGE_ROLES.items() if key in get}
    first = "user" if kind == "sft" else "prompt"
    opening = [turn[first], turn["assistant"]] if kind == "sft" else [turn[first]]
    turns = pl.concat_list(opening)
    if "system" in get:
        system = get["system"].cast(pl.String)
        opened = pl.concat_list(message("system", system), *opening)
        turns = pl.when(system.is_not_null() & (system != "")).then(opened).otherwise(turns)
    columns = {"messages" if kind == "sft" else "prompt": turns}
    columns |= {key: pl.concat_list(turn[key]) for key in ("chosen", "rejected", "completion") if key in turn}
    columns |= {key: get[key].cast(pl.String) for key in ("label", "feedback", "model", "ts") if key in get}
    meta: dict[str, pl.Expr] = {}
    if "margin" in get:
        margin = _margin(frame, mapping["margin"])
        if margin is None:
            return None
        columns["margin"] = margin
    if "id" in get:
        meta["id"] = json_value(get["id"])
    return Plan(kind, columns, used=tuple(mapping.values()), meta=meta)


def _margin(frame: pl.DataFrame, column: str) -> pl.Expr | None:
    """The margin as a float when every value is a number or null (else ``None``: row by row)."""
    if column not in frame.columns:
        return pl.lit(None, pl.Float64)
    values = frame[column]
    if values.dtype.is_integer() or values.dtype.is_float() or values.dtype == pl.Null:
        return pl.col(column).cast(pl.Float64)
    # An empty cell is no margin, as a null one is.
    if values.dtype == pl.String and values.drop_nulls().filter(values.drop_nulls() != "").str.contains(_NUMBER).all():
        return pl.col(column).cast(pl.Float64, strict=False)
    return None
