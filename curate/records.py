"""Canonical record shapes: one polars schema per kind, validation, and stable content ids.

Every stage, store version and trainer speaks these shapes. They are TRL's conversational
formats, so a stored version feeds ``SFTTrainer`` / ``DPOTrainer`` with no glue:

========== ==========================================================================
kind       columns besides ``id``, ``source``, ``meta``
========== ==========================================================================
sft        ``messages``, ``label``
preference ``prompt``, ``chosen``, ``rejected``, ``label``, ``margin``
prompt     ``prompt``, ``label``
feedback   ``prompt``, ``completion``, ``feedback``, ``model``, ``ts``
========== ==========================================================================

A message list is ``list<struct{role, content}>`` with role in :data:`ROLES`. ``meta`` is a
JSON object serialised as a string (any keys; Delta and Arrow stay schema-stable).
``id`` is the xxh3-128 hex digest of the kind plus the normalised content (NFC, stripped,
whitespace folded) and the label, so identical content always gets the same id.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import polars as pl
import xxhash

from curate._raw import (
    RAW_LIMIT,
    clean_text,
    describe,
    json_text,
    lone_surrogate,
    removal_detail,
    scalar_text,
)

__all__ = [
    "KINDS",
    "MESSAGES",
    "RAW_LIMIT",
    "ROLES",
    "SCHEMAS",
    "STORE_COLUMNS",
    "Kind",
    "build_frame",
    "conversation_columns",
    "empty_frame",
    "normalise_text",
    "record_id",
    "scalar_text",
    "text_of",
    "validate_record",
]

Kind = Literal["sft", "preference", "prompt", "feedback"]
KINDS: tuple[str, ...] = ("sft", "preference", "prompt", "feedback")
ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")

MESSAGE = pl.Struct({"role": pl.String, "content": pl.String})
MESSAGES = pl.List(MESSAGE)
_COMMON = {"id": pl.String, "source": pl.String, "meta": pl.String}

SCHEMAS: dict[str, pl.Schema] = {
    "sft": pl.Schema({**_COMMON, "messages": MESSAGES, "label": pl.String}),
    "preference": pl.Schema(
        {
            **_COMMON,
            "prompt": MESSAGES,
            "chosen": MESSAGES,
            "rejected": MESSAGES,
            "label": pl.String,
            "margin": pl.Float64,
        }
    ),
    "prompt": pl.Schema({**_COMMON, "prompt": MESSAGES, "label": pl.String}),
    "feedback": pl.Schema(
        {
            **_COMMON,
            "prompt": MESSAGES,
            "completion": MESSAGES,
            "feedback": pl.String,
            "model": pl.String,
            "ts": pl.String,
        }
    ),
}

# Columns the store adds beside the record columns: the split of a kept row, or for a removed
# row the stage that removed it, a stable snake_case reason and a JSON detail (which rule,
# which value, which row it duplicated...).
STORE_COLUMNS = pl.Schema(
    {"split": pl.String, "removed_by": pl.String, "reason": pl.String, "detail": pl.String}
)

_WS = re.compile(r"\s+")


def conversation_columns(kind: str) -> tuple[str, ...]:
    """Names of the message-list columns of ``kind``, in canonical order."""
    return tuple(name for name, dtype in SCHEMAS[kind].items() if dtype == MESSAGES)


def normalise_text(text: str) -> str:
    """Unicode NFC, surrounding whitespace stripped, inner whitespace runs folded to one space."""
    return _WS.sub(" ", unicodedata.normalize("NFC", text)).strip()


def record_id(kind: str, record: Mapping[str, Any]) -> str:
    """Stable content id of one record: xxh3-128 over kind, normalised conversations and label.

    ``source`` and ``meta`` do not take part, so the same conversation read from two files has
    one id.
    """
    h = xxhash.xxh3_128()
    h.update(kind.encode())
    for column in conversation_columns(kind):
        h.update(b"\x1e" + column.encode())
        for message in record.get(column) or []:
            h.update(b"\x1f" + str(message.get("role")).encode() + b"\x1d")
            h.update(normalise_text(str(message.get("content") or "")).encode())
    for column in ("label", "feedback"):
        if column in SCHEMAS[kind] and record.get(column) is not None:
            h.update(b"\x1e" + column.encode() + b"\x1d" + str(record[column]).encode())
    return h.hexdigest()


_TEXT_COLUMNS = ("label", "feedback", "model", "ts")


def _message_problem(column: str, messages: Any) -> tuple[str, str] | None:
    if messages is None or messages == []:
        return f"empty_{column}", removal_detail(column, f"{column} has no messages")
    if not isinstance(messages, list):
        problem = f"{column} is {describe(messages)}, not a list of messages"
        return f"malformed_{column}", removal_detail(column, problem, messages)
    for i, message in enumerate(messages):
        where = f"{column}[{i}]"
        if not isinstance(message, Mapping):
            return "malformed_message", removal_detail(where, f"{where} is {describe(message)}, not an object", message)
        if message.get("role") not in ROLES:
            problem = f"{where}.role {message.get('role')!r} is not one of {', '.join(ROLES)}"
            return "unknown_role", removal_detail(f"{where}.role", problem, message.get("role"))
        if not isinstance(message.get("content"), str):
            problem = f"{where}.content is {describe(message.get('content'))}, not text"
            return "malformed_message", removal_detail(f"{where}.content", problem, message.get("content"))
    return None


def validate_record(kind: str, record: Mapping[str, Any]) -> tuple[str, str] | None:
    """Check one record against its kind.

    Returns
    -------
    ``None`` when the record is valid, else ``(reason, detail)``: a stable snake_case reason
    (``invalid_unicode``, ``empty_messages``, ``malformed_messages``, ``malformed_message``,
    ``unknown_role``, ``malformed_label``, ``no_assistant_turn``, ``no_user_turn``,
    ``empty_chosen`` ...) and a JSON detail ``{"field", "problem", "raw"?}``. ``raw`` is the
    offending value as JSON text (cut at :data:`RAW_LIMIT` characters, with ``raw_truncated``
    saying so) wherever the stored columns cannot hold it as given.
    """
    for name in SCHEMAS[kind]:
        found = lone_surrogate(record.get(name), name) if name != "id" else None
        if found:
            where, text = found
            problem = f"{where} holds a lone UTF-16 surrogate, which is not valid Unicode text"
            return "invalid_unicode", removal_detail(where, problem, text)
    for column in conversation_columns(kind):
        problem = _message_problem(column, record.get(column))
        if problem:
            return problem
    for name in _TEXT_COLUMNS:
        value = record.get(name)
        if name in SCHEMAS[kind] and value is not None and scalar_text(value) is None:
            problem = f"{name} is {describe(value)}, not text or a number"
            return f"malformed_{name}", removal_detail(name, problem, value)
    if kind == "sft":
        roles = [m["role"] for m in record["messages"]]
        if "assistant" not in roles:
            return "no_assistant_turn", removal_detail("messages", "messages has no assistant turn to learn from")
        if "user" not in roles:
            return "no_user_turn", removal_detail("messages", "messages has no user turn")
    if kind in ("preference", "prompt", "feedback"):
        if not any(m["role"] == "user" for m in record["prompt"]):
            return "no_user_turn", removal_detail("prompt", "prompt has no user turn")
    return None


def _encode_meta(meta: Any) -> str:
    if meta is None:
        return "{}"
    if isinstance(meta, str):
        return meta
    return json_text(meta)


def _any_text(value: Any) -> str | None:
    """Any value as storable text: scalars as :func:`scalar_text` writes them, the rest as JSON."""
    if value is None:
        return None
    text = scalar_text(value)
    return clean_text(json_text(value) if text is None else text)


def _coerce_messages(messages: Any) -> list[dict[str, str | None]]:
    """Best-effort message list for a row that failed validation (``detail`` keeps what is lost)."""
    if not isinstance(messages, list):
        return []
    out = []
    for m in messages:
        if isinstance(m, Mapping):
            out.append({"role": _any_text(m.get("role")), "content": _any_text(m.get("content"))})
    return out


def _row(kind: str, record: Mapping[str, Any], *, coerce: bool) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name, dtype in SCHEMAS[kind].items():
        value = record.get(name)
        if dtype == MESSAGES and coerce:
            value = _coerce_messages(value)
        elif name == "meta":
            value = _encode_meta(value)
        elif name in (*_TEXT_COLUMNS, "source"):
            value = clean_text(scalar_text(value))
        row[name] = value
    row["id"] = record_id(kind, row)
    return row


def build_frame(kind: str, records: Iterable[Mapping[str, Any]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Validate canonical records and build frames with the exact schema of ``kind``.

    Parameters
    ----------
    kind
        One of :data:`KINDS`.
    records
        Dicts with the kind's columns; message lists as lists of ``{role, content}`` dicts and
        ``meta`` as a dict (or already-encoded JSON). ``id`` is computed, never trusted.

    Returns
    -------
    ``(valid, invalid)``: ``valid`` has the kind's schema; ``invalid`` has it plus ``reason``
    and ``detail`` (stage ``convert`` records them as removed). No record is dropped.
    """
    if kind not in SCHEMAS:
        raise ValueError(f"Unknown record kind {kind!r}; expected one of {', '.join(KINDS)}.")
    valid, invalid = [], []
    for record in records:
        problem = validate_record(kind, record)
        if problem is None:
            valid.append(_row(kind, record, coerce=False))
        else:
            row = _row(kind, record, coerce=True)
            row["reason"], row["detail"] = problem
            invalid.append(row)
    schema = SCHEMAS[kind]
    invalid_schema = pl.Schema({**schema, "reason": pl.String, "detail": pl.String})
    return pl.DataFrame(valid, schema=schema), pl.DataFrame(invalid, schema=invalid_schema)


def empty_frame(kind: str) -> pl.DataFrame:
    """A zero-row frame with the schema of ``kind``."""
    return pl.DataFrame(schema=SCHEMAS[kind])


def text_of(
    frame: pl.DataFrame, kind: str, *, roles: Iterable[str] | None = None, columns: Iterable[str] | None = None
) -> pl.Series:
    """One text per row: the contents of the row's messages joined by newlines.

    Parameters
    ----------
    frame
        Rows of ``kind``.
    roles
        Keep only messages with these roles (e.g. ``["user"]``); ``None`` keeps all.
    columns
        Message-list columns to include; ``None`` means all of the kind's conversation columns.
    """
    cols = list(columns) if columns is not None else list(conversation_columns(kind))
    role_set = list(roles) if roles is not None else None
    parts = []
    for column in cols:
        element = pl.element()
        if role_set is not None:
            element = element.filter(element.struct.field("role").is_in(role_set))
        parts.append(pl.col(column).list.eval(element.struct.field("content")).list.join("\n"))
    return frame.select(pl.concat_str(parts, separator="\n").alias("text")).to_series()
