"""The row path: input rows (dicts) -> canonical records, one at a time (the reference for every batch path)."""

from __future__ import annotations

from typing import Any

from curate.errors import InputError
from curate.formats.containers import Row
from curate.formats.conversions import CONVERTERS
from curate.formats.table import table_record

__all__ = ["convert_rows"]


def _recast(record: dict[str, Any], *, have: str, want: str, format: str, path: str) -> dict[str, Any]:
    """Turn a record of the kind a format produces into the kind the source asks for."""
    if have == want:
        return record
    if want == "prompt" and have == "sft":
        messages = record.get("messages")
        while (
            isinstance(messages, list)
            and messages
            and isinstance(messages[-1], dict)
            and messages[-1].get("role") == "assistant"
        ):
            messages = messages[:-1]
        return {"prompt": messages, "label": record.get("label"), "meta": record["meta"]}
    if want == "prompt" and have in ("preference", "feedback"):
        return {"prompt": record.get("prompt"), "label": record.get("label"), "meta": record["meta"]}
    raise InputError(
        f"{path} is in {format} format, whose rows become {have} records; they cannot be read as "
        f"kind {want}. Set `kind: {have}` (or `kind: prompt` to keep only the prompts), or leave it out."
    )


def convert_rows(
    rows: list[Row], *, format: str, kind: str, mapping: dict[str, str] | None, shown: str
) -> list[dict[str, Any]]:
    """Records of ``kind`` from ``(position, row)`` pairs of a file in ``format`` (both resolved).

    A table's mapping is applied as given: that its columns exist is checked once per file
    (:func:`curate.formats.table.check_mapping`), since a block of rows may lack a column others have.
    """
    records = []
    for line, row in rows:
        if format == "table":
            record = table_record(row, kind=kind, mapping=mapping)
        else:
            have, record = CONVERTERS[format](row)
            record = _recast(record, have=have, want=kind, format=format, path=shown)
        record["meta"]["line"] = line
        record["source"] = shown
        records.append(record)
    return records
