"""The row path: input rows (dicts) -> canonical records, one at a time (the reference for every batch path).

Also :class:`SourceRows`, what reading a source, a file or a part of one produces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from curate.errors import InputError
from curate.formats.containers import Row
from curate.formats.conversions import CONVERTERS
from curate.formats.table import table_record
from curate.records import build_frame

if TYPE_CHECKING:
    from curate.config import SourceConfig

__all__ = ["SourceRows", "convert_rows", "source_rows"]


@dataclass(frozen=True)
class SourceRows:
    """What one source (or one part of a file) produced.

    Attributes
    ----------
    kind
        The record kind of every row (given by the source or inferred from the format).
    valid
        Rows that fit the kind's schema, as :func:`curate.records.build_frame` returns them.
    invalid
        Rows that do not, with ``reason`` and ``detail``; stage ``convert`` records them as removed.
    files
        The files read, in order, as they appear in the ``source`` column.
    """

    kind: str
    valid: pl.DataFrame
    invalid: pl.DataFrame
    files: list[str]


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


def source_rows(rows: list[Row], *, source: SourceConfig, shown: str) -> SourceRows:
    """Rows of one file through the row path (``source`` resolved), validated."""
    records = convert_rows(rows, format=source.format, kind=source.kind, mapping=source.mapping, shown=shown)
    valid, invalid = build_frame(source.kind, records)
    return SourceRows(kind=source.kind, valid=valid, invalid=invalid, files=[shown])
