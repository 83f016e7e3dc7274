"""``format: table``: any CSV, Parquet or JSON(L) file whose columns a ``mapping`` names.

The mapping goes from record field to input column, e.g. for Bitext
``{user: instruction, assistant: response, label: category}``. Text fields become one message
each; columns the mapping does not name go to ``meta``; a mapped ``id`` column is kept as
``meta["id"]`` (record ids are always content hashes). An empty cell reads as empty text (CSV
cannot tell it from a missing one), which a quality stage can then remove. A number in a text
field (a numeric Parquet column) becomes its text, e.g. ``7`` or ``2.5``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from curate.errors import InputError
from curate.formats.conversions import as_number
from curate.records import scalar_text

__all__ = ["MAPPING_KEYS", "REQUIRED_KEYS", "check_mapping", "mapping_problem", "table_record"]

# Mapping keys each kind accepts, and the ones it needs.
MAPPING_KEYS: dict[str, tuple[str, ...]] = {
    "sft": ("user", "assistant", "system", "label", "id"),
    "preference": ("prompt", "chosen", "rejected", "system", "label", "margin", "id"),
    "prompt": ("prompt", "system", "label", "id"),
    "feedback": ("prompt", "completion", "feedback", "model", "ts", "system", "id"),
}
REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "sft": ("user", "assistant"),
    "preference": ("prompt", "chosen", "rejected"),
    "prompt": ("prompt",),
    "feedback": ("prompt", "completion"),
}
_MESSAGE_ROLES = {"user": "user", "assistant": "assistant", "prompt": "user", "chosen": "assistant",
                  "rejected": "assistant", "completion": "assistant"}  # fmt: skip


def mapping_problem(mapping: dict[str, str] | None, *, format: str, kind: str | None) -> str | None:
    """What is wrong with a source's ``format`` / ``kind`` / ``mapping`` combination, or ``None``.

    Decidable from the config alone, so :class:`curate.config.SourceConfig` runs it when the
    pipeline file is loaded. With ``kind`` unknown, keys are checked against every kind.
    """
    if format == "table" and not mapping:
        return "format table needs `mapping` (record field -> column), e.g. {user: question, assistant: answer}"
    if not mapping:
        return None
    if format not in ("auto", "table"):
        return f"`mapping` only applies to format table (or auto), not {format}; remove it or set `format: table`"
    allowed = MAPPING_KEYS[kind] if kind else tuple(dict.fromkeys(k for keys in MAPPING_KEYS.values() for k in keys))
    unknown = [key for key in mapping if key not in allowed]
    if unknown:
        what = f"a {kind} record" if kind else "any record kind"
        return f"mapping key(s) {', '.join(unknown)} do not fit {what}; use {', '.join(allowed)}"
    missing = [key for key in REQUIRED_KEYS[kind] if key not in mapping] if kind else []
    if missing:
        return f"mapping lacks {', '.join(missing)}, which every {kind} record needs"
    return None


def check_mapping(mapping: dict[str, str] | None, *, kind: str, columns: Sequence[str], path: str) -> dict[str, str]:
    """Check a table mapping against the kind and the file's columns.

    Raises
    ------
    InputError
        When :func:`mapping_problem` finds a problem, or the mapping names a column the file
        does not have (the message lists the columns it has).
    """
    problem = mapping_problem(mapping, format="table", kind=kind)
    if problem or not mapping:
        raise InputError(f"Cannot read {path} as a table: {problem}. Columns in the file: {', '.join(columns)}.")
    for key, column in mapping.items():
        if column not in columns:
            raise InputError(
                f"mapping {key}: {column} for {path} names the column {column!r}, which the file does not "
                f"have. Available columns: {', '.join(columns)}."
            )
    return mapping


def _text(value: Any) -> Any:
    """A cell as message text: empty for a missing cell, numbers and booleans as text (a numeric
    Parquet column); anything else (a list, a date) as it is, for validation to report."""
    if value is None:
        return ""
    text = scalar_text(value)
    return value if text is None else text


def table_record(row: dict[str, Any], *, kind: str, mapping: dict[str, str]) -> dict[str, Any]:
    """One table row -> a canonical record of ``kind`` (``mapping`` already checked)."""
    get = {key: row.get(column) for key, column in mapping.items()}
    system = [{"role": "system", "content": _text(get["system"])}] if get.get("system") else []
    message = {key: {"role": role, "content": _text(get[key])} for key, role in _MESSAGE_ROLES.items() if key in get}
    record: dict[str, Any] = {key: [m] for key, m in message.items() if key not in ("user", "assistant", "prompt")}
    if kind == "sft":
        record["messages"] = [*system, message["user"], message["assistant"]]
    else:
        record["prompt"] = [*system, message["prompt"]]
    for key in ("label", "feedback", "model", "ts"):
        if key in get:
            record[key] = get[key]
    used = set(mapping.values())
    meta = {k: v for k, v in row.items() if k not in used}
    if "margin" in get:
        record["margin"] = as_number(get["margin"])
        if record["margin"] is None and get["margin"] not in (None, ""):
            meta["margin"] = get["margin"]  # not a number: kept, not guessed
    if "id" in get:
        meta["id"] = get["id"]
    record["meta"] = meta
    return record
