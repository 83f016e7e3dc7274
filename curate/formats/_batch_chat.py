"""Batch converters of the conversational JSONL formats: a block's columns -> a :class:`Plan`.

Each mirrors its row converter in :mod:`curate.formats.conversions` (or :mod:`~curate.formats.hh_rlhf`,
:mod:`~curate.formats.feedback`) for the plain case and returns ``None`` for anything else:
a value of another type, a key that becomes ``meta["message_extras"]``, an ``alpaca`` history,
a ``messages`` preference or prompt row. Those blocks are read row by row.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from curate.formats._batch import JsonFacts, Plan, TypedFacts, message, text_column
from curate.formats.conversions import SHAREGPT_ROLES

__all__ = ["BATCH_CONVERTERS"]

Facts = JsonFacts | TypedFacts
_OPENAI = pl.Struct({"role": pl.String, "content": pl.String})
_SHAREGPT = pl.Struct({"from": pl.String, "value": pl.String})


def _texts(frame: pl.DataFrame, facts: Facts, columns: list[str], keys: tuple[str, str]) -> bool:
    """Whether every message of ``columns`` (lists of messages or single ones) has ``keys`` followed by JSON text.

    A null field or message fails here or in validation; either way the block is read row by row.
    """
    count = 0
    for name in columns:
        column = frame[name]
        count += column.list.len().sum() if isinstance(column.dtype, pl.List) else column.len() - column.null_count()
    return all(facts.strings(key, count) for key in keys)


def _fits(dtype: pl.DataType, fields: pl.Struct, *, many: bool = True) -> bool:
    """Whether ``dtype`` is a list of (or, not ``many``, one) struct with exactly ``fields``, in any order."""
    if many:
        if not isinstance(dtype, pl.List):
            return False
        dtype = dtype.inner
    return isinstance(dtype, pl.Struct) and dict(dtype.to_schema()) == dict(fields.to_schema())


def _openai_turns(name: str, dtype: pl.DataType) -> pl.Expr:
    """A ``{role, content}`` list column in the canonical field order."""
    if dtype == pl.List(_OPENAI):
        return pl.col(name)
    field = pl.element().struct.field
    return pl.col(name).list.eval(pl.struct(role=field("role"), content=field("content")))


def _optional_texts(frame: pl.DataFrame, facts: Facts, names: tuple[str, ...]) -> bool:
    return all(text_column(frame, facts, name, required=False) for name in names)


def _column(frame: pl.DataFrame, name: str) -> pl.Expr:
    return pl.col(name) if name in frame.columns else pl.lit(None, pl.String)


def _with_system(frame: pl.DataFrame, turns: pl.Expr) -> pl.Expr:
    """A non-empty ``system`` column opens the conversation."""
    if "system" not in frame.columns:
        return turns
    system = pl.col("system")
    opened = pl.concat_list(message("system", system), turns)
    return pl.when(system.is_not_null() & (system != "")).then(opened).otherwise(turns)


def alpaca(frame: pl.DataFrame, facts: Facts) -> Plan | None:
    """:func:`~curate.formats.conversions.alpaca` without ``history`` turns."""
    # A null instruction or output makes its row fail validation here: the row path converts it.
    needed = ("instruction", "output")
    if not all(name in frame.columns and text_column(frame, facts, name, required=False) for name in needed):
        return None
    if not _optional_texts(frame, facts, ("input", "system", "label")):
        return None
    if "history" in frame.columns and frame["history"].dtype != pl.Null:
        history = frame["history"]
        if not isinstance(history.dtype, pl.List) or (history.list.len().max() or 0) > 0:
            return None
    user = pl.col("instruction")
    if "input" in frame.columns:
        extra = pl.col("input")
        appended = pl.concat_str(user, pl.lit("\n\n"), extra)
        user = pl.when(extra.is_not_null() & (extra != "")).then(appended).otherwise(user)
    turns = pl.concat_list(message("user", user), message("assistant", pl.col("output")))
    columns = {"messages": _with_system(frame, turns), "label": _column(frame, "label")}
    return Plan("sft", columns, used=("instruction", "input", "output", "system", "history", "label"))


def _sharegpt_turns(messages: pl.Expr) -> pl.Expr:
    speaker = pl.element().struct.field("from").replace(SHAREGPT_ROLES)
    return messages.list.eval(pl.struct(role=speaker, content=pl.element().struct.field("value")))


def sharegpt(frame: pl.DataFrame, facts: Facts) -> Plan | None:
    """:func:`~curate.formats.conversions.sharegpt` with ``{from, value}`` turns only."""
    names = [c for c in ("conversations", "messages") if c in frame.columns]
    if len(names) != 1 or not _fits(frame[names[0]].dtype, _SHAREGPT):
        return None
    if not (_texts(frame, facts, names, ("from", "value")) and _optional_texts(frame, facts, ("system", "label"))):
        return None
    columns = {"messages": _with_system(frame, _sharegpt_turns(pl.col(names[0]))), "label": _column(frame, "label")}
    return Plan("sft", columns, used=(names[0], "system", "label"))


def sharegpt_preference(frame: pl.DataFrame, facts: Facts) -> Plan | None:
    """:func:`~curate.formats.conversions.sharegpt_preference`: one ``{from, value}`` each side."""
    if any(c not in frame.columns for c in ("conversations", "chosen", "rejected")):
        return None
    sides = all(_fits(frame[c].dtype, _SHAREGPT, many=False) for c in ("chosen", "rejected"))
    if not sides or not _fits(frame["conversations"].dtype, _SHAREGPT):
        return None
    if not (_texts(frame, facts, ["conversations", "chosen", "rejected"], ("from", "value"))
            and _optional_texts(frame, facts, ("system", "label"))):  # fmt: skip
        return None
    columns = {
        "prompt": _with_system(frame, _sharegpt_turns(pl.col("conversations"))),
        **{side: _sharegpt_turns(pl.concat_list(pl.col(side))) for side in ("chosen", "rejected")},
        "label": _column(frame, "label"),
    }
    return Plan("preference", columns, used=("conversations", "system", "chosen", "rejected", "label"))


def messages(frame: pl.DataFrame, facts: Facts) -> Plan | None:
    """:func:`~curate.formats.conversions.messages` for blocks of ``messages`` rows (sft) or
    ``prompt`` + ``completion`` rows (feedback) with ``{role, content}`` text turns."""
    if "prompt" in frame.columns and "completion" in frame.columns:
        return _prompt_completion(frame, facts)
    if "prompt" in frame.columns and "messages" not in frame.columns:
        return _explicit_prompt(frame, facts)
    if "messages" not in frame.columns or not facts.every_row("messages", frame.height):
        return None
    if not _fits(frame["messages"].dtype, _OPENAI) or not _texts(frame, facts, ["messages"], ("role", "content")):
        return None
    if not _optional_texts(frame, facts, ("label",)):
        return None
    turns = _openai_turns("messages", frame["messages"].dtype)
    return Plan("sft", {"messages": turns, "label": _column(frame, "label")}, used=("messages", "label"))


def _explicit_prompt(frame: pl.DataFrame, facts: Facts) -> Plan | None:
    """``prompt`` + ``chosen`` + ``rejected`` turns (preference: TRL's explicit-prompt form), or ``prompt`` alone."""
    sides = [c for c in ("chosen", "rejected") if c in frame.columns]
    if "chosen_messages" in frame.columns or sides not in ([], ["chosen", "rejected"]):
        return None
    lists = ["prompt", *sides]
    if not all(facts.every_row(c, frame.height) and _fits(frame[c].dtype, _OPENAI) for c in lists):
        return None
    if not (_texts(frame, facts, lists, ("role", "content")) and _optional_texts(frame, facts, ("label",))):
        return None
    columns = {c: _openai_turns(c, frame[c].dtype) for c in lists} | {"label": _column(frame, "label")}
    if not sides:
        return Plan("prompt", columns, used=("prompt", "label"))
    margin = frame["margin"].dtype if "margin" in frame.columns else pl.Null
    if not (margin.is_integer() or margin.is_float() or margin == pl.Null):
        return None  # a margin that is not a number is kept in meta, row by row
    columns["margin"] = _column(frame, "margin")
    used = ("prompt", "chosen", "rejected", "chosen_messages", "rejected_messages", "label", "margin")
    return Plan("preference", columns, used=used)


def _prompt_completion(frame: pl.DataFrame, facts: Facts) -> Plan | None:
    """:func:`~curate.formats.feedback.prompt_completion`, completion as text or ``{role, content}`` turns."""
    if not (facts.every_row("prompt", frame.height) and facts.every_row("completion", frame.height)):
        return None
    if not _fits(frame["prompt"].dtype, _OPENAI) or not _optional_texts(frame, facts, ("feedback", "model", "ts")):
        return None
    completion = frame["completion"]
    if completion.dtype == pl.String and text_column(frame, facts, "completion", required=True):
        answer, lists = pl.concat_list(message("assistant", pl.col("completion"))), ["prompt"]
    elif _fits(completion.dtype, _OPENAI):
        answer, lists = _openai_turns("completion", completion.dtype), ["prompt", "completion"]
    elif _fits(completion.dtype, _OPENAI, many=False):
        one = pl.col("completion").struct
        answer = pl.concat_list(message(one.field("role"), one.field("content")))
        lists = ["prompt", "completion"]
    else:
        return None
    if not _texts(frame, facts, lists, ("role", "content")):
        return None
    columns = {"prompt": _openai_turns("prompt", frame["prompt"].dtype), "completion": answer,
               **{name: _column(frame, name) for name in ("feedback", "model", "ts")}}  # fmt: skip
    return Plan("feedback", columns, used=("prompt", "completion", "feedback", "model", "ts"))


def kto(frame: pl.DataFrame, facts: Facts) -> Plan | None:
    """:func:`~curate.formats.conversions.kto` with a boolean ``label`` on every row."""
    label = frame["label"] if "label" in frame.columns else None
    # Once on every row: a second `label` in a line (Python keeps the last) counts twice.
    if label is None or label.dtype != pl.Boolean or label.null_count() or not facts.every_row("label", frame.height):
        return None
    if "messages" not in frame.columns or not _fits(frame["messages"].dtype, _OPENAI):
        return None
    if not _texts(frame, facts, ["messages"], ("role", "content")):
        return None
    turns = _openai_turns("messages", frame["messages"].dtype)
    is_answer = turns.list.eval(pl.element().struct.field("role") == "assistant")
    last = turns.list.len() - 1 - is_answer.list.reverse().list.arg_max()
    columns = {
        "prompt": turns.list.slice(0, last),
        # No assistant turn: no completion, so the row fails validation and the row path removes it.
        "completion": pl.when(is_answer.list.any()).then(turns.list.slice(last)),
        "feedback": pl.when(pl.col("label")).then(pl.lit("up")).otherwise(pl.lit("down")),
    }
    return Plan("feedback", columns, used=("messages", "label"))


def _transcript(text: pl.Expr) -> pl.Expr:
    """The text cut at every ``\n\nHuman:`` / ``\n\nAssistant:`` marker; later parts start with ``U`` / ``A``."""
    marked = text.str.replace_all("\n\nHuman:", "\x00U", literal=True)
    return marked.str.replace_all("\n\nAssistant:", "\x00A", literal=True).str.split("\x00")


def hh_rlhf(frame: pl.DataFrame, facts: Facts) -> Plan | None:
    """:func:`~curate.formats.hh_rlhf.hh_rlhf` for transcripts whose last marker is the assistant's.

    Other rows (no final assistant turn, a side that is null) get no prompt, so they fail
    validation and the row path converts them.
    """
    sides = ("chosen", "rejected")
    if not all(side in frame.columns and text_column(frame, facts, side, required=False) for side in sides):
        return None
    parts = {side: _transcript(pl.col(side)) for side in sides}
    ends = [(p.list.len() > 1) & p.list.last().str.starts_with("A") for p in parts.values()]
    # \x00 is the cut mark; \x1c-\x1f are whitespace to Python's strip but not to polars'.
    plain = pl.all_horizontal(*ends, ~pl.any_horizontal(pl.col(*sides).str.contains(r"[\x00\x1c-\x1f]")))
    turn = pl.element().str.slice(1).str.strip_chars()
    role = pl.when(pl.element().str.starts_with("U")).then(pl.lit("user")).otherwise(pl.lit("assistant"))
    chosen = parts["chosen"]
    turns = chosen.list.slice(1, chosen.list.len() - 2).list.eval(pl.struct(role=role, content=turn))
    before = chosen.list.first().str.strip_chars()
    prompt = pl.when(before != "").then(pl.concat_list(message("system", before), turns)).otherwise(turns)
    prompt = pl.when(plain).then(prompt)
    answers = {side: pl.concat_list(message("assistant", p.list.last().str.slice(1).str.strip_chars()))
               for side, p in parts.items()}  # fmt: skip
    prefixes = [p.list.slice(0, p.list.len() - 1).list.join("\x00") for p in parts.values()]
    mismatch = pl.when(prefixes[0] != prefixes[1]).then(pl.lit("true"))
    columns = {"prompt": prompt, **answers}
    return Plan("preference", columns, used=("chosen", "rejected"), meta={"prefix_mismatch": mismatch})


BATCH_CONVERTERS: dict[str, Callable[[pl.DataFrame, Facts], Plan | None]] = {
    "alpaca": alpaca,
    "sharegpt": sharegpt,
    "sharegpt_preference": sharegpt_preference,
    "messages": messages,
    "kto": kto,
    "hh_rlhf": hh_rlhf,
}
