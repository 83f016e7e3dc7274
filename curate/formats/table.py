"""``format: table``: any CSV, Parquet or JSON(L) file whose columns a ``mapping`` names.

The mapping goes from record field to input column, e.g. for Bitext
``{user: instruction, assistant: response, label: category}``. Text fields become one message
each; columns the mapping does not name go to ``meta``; a mapped ``id`` column is kept as
``meta["id"]`` (record ids are always content hashes). An empty cell reads as empty text (CSV
cannot tell it from a missing one), which a quality stage can then remove.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from curate.errors import InputError

__all__ = ["MAPPING_KEYS", "REQUIRED_KEYS", "check_mapping", "table_record"]

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


def check_mapping(mapping: dict[str, str] | None, *, kind: str, columns: Sequence[str], path: str) -> dict[str, str]:
    """Check a table mapping against the kind and the file's columns.

    Raises
    ------
    InputError
        When the mapping is missing, uses a key the kind does not know, lacks a key the kind
        needs, or names a column the file does not have (the message lists the columns it has).
    """
    if not mapping:
        raise InputError(
            f"{path} is read as a table, which needs `mapping` (record field -> column), e.g. "
            f"{{user: question, assistant: answer}}. Columns in the file: {', '.join(columns)}."
        )
    unknown = [key for key in mapping if key not in MAPPING_KEYS[kind]]
    if unknown:
        raise InputError(
            f"mapping for {path} has key(s) {', '.join(unknown)} that a {kind} record does not have; "
            f"{kind} accepts {', '.join(MAPPING_KEYS[kind])}."
        )
    missing = [key for key in REQUIRED_KEYS[kind] if key not in mapping]
    if missing:
        raise InputError(f"mapping for {path} lacks {', '.join(missing)}, which every {kind} record needs.")
    for key, column in mapping.items():
        if column not in columns:
            raise InputError(
                f"mapping {key}: {column} for {path} names the column {column!r}, which the file does not "
                f"have. Available columns: {', '.join(columns)}."
            )
    return mapping


def _text(value: Any) -> Any:
    return "" if value is None else value


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def table_record(row: dict[str, Any], *, kind: str, mapping: dict[str, str]) -> dict[str, Any]:
    """One table row -> a canonical record of ``kind`` (``mapping`` already checked)."""
    get = {key: row.get(column) for key, column in mapping.items()}
    system = [{"role": "system", "content": get["system"]}] if get.get("system") else []
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
        record["margin"] = _number(get["margin"])
        if record["margin"] is None and get["margin"] not in (None, ""):
            meta["margin"] = get["margin"]  # not a number: kept, not guessed
    if "id" in get:
        meta["id"] = get["id"]
    record["meta"] = meta
    return record
