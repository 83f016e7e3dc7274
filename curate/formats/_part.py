"""One part of a file (a JSONL block, a table batch) to records: the batch path where it can, the row path where not.

A part that is plain converts on the batch path; rows that fail validation there are converted
again by the row path, which removes them with its reasons, and the valid rows of both are put
back in file order. A part that is not plain (a line that does not parse, a number where text
belongs...) is cut into :data:`PIECES` pieces, each tried again: one odd row then costs its
piece, not the whole part, the row path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from curate.formats._batch import JsonFacts, TypedFacts, finish, parse_jsonl
from curate.formats._batch_chat import BATCH_CONVERTERS
from curate.formats._batch_table import table_plan
from curate.formats._rows import SourceRows, source_rows
from curate.formats.containers import Row, rows_of_jsonl
from curate.records import build_frame

if TYPE_CHECKING:
    from curate.config import SourceConfig

__all__ = ["PIECES", "jsonl_part", "table_part"]

# Pieces a part that is not plain is cut into, when each gets at least _PIECE_ROWS rows.
PIECES = 8
_PIECE_ROWS = 256


def jsonl_part(data: bytes, *, first_line: int, source: SourceConfig, shown: str) -> tuple[SourceRows, list[str]]:
    """Records of whole JSONL lines starting at ``first_line``, and the keys they have (a table's columns)."""
    whole = _jsonl_piece(data, first_line=first_line, source=source, shown=shown, fast_only=True)
    if whole is not None:
        return whole
    parts = [_jsonl_piece(piece, first_line=first, source=source, shown=shown, fast_only=False)
             for first, piece in _pieces(data, first_line=first_line)]  # fmt: skip
    return _joined([part for part, _ in parts]), list(dict.fromkeys(key for _, keys in parts for key in keys))


def table_part(frame: pl.DataFrame, *, first_row: int, source: SourceConfig, shown: str) -> SourceRows:
    """Records of table rows starting at row ``first_row``."""
    whole = _table_piece(frame, first_row=first_row, source=source, shown=shown, fast_only=True)
    if whole is not None:
        return whole
    size = -(-frame.height // PIECES) if frame.height >= PIECES * _PIECE_ROWS else max(frame.height, 1)
    return _joined([
        _table_piece(frame.slice(start, size), first_row=first_row + start, source=source, shown=shown, fast_only=False)
        for start in range(0, max(frame.height, 1), size)
    ])


def _pieces(data: bytes, *, first_line: int) -> list[tuple[int, bytes]]:
    """``data`` cut at line ends into up to :data:`PIECES` runs of lines, each with its first line."""
    if data.count(b"\n") < PIECES * _PIECE_ROWS:
        return [(first_line, data)]
    pieces, start = [], 0
    for i in range(1, PIECES + 1):
        end = len(data) if i == PIECES else data.find(b"\n", len(data) * i // PIECES) + 1 or len(data)
        if end > start:
            pieces.append((first_line, data[start:end]))
            first_line += data.count(b"\n", start, end)
            start = end
    return pieces


def _jsonl_piece(
    data: bytes, *, first_line: int, source: SourceConfig, shown: str, fast_only: bool
) -> tuple[SourceRows, list[str]] | None:
    parsed = parse_jsonl(data, first_line=first_line)
    if parsed is not None:
        frame, numbers = parsed
        fast = _batch(frame, source=source, shown=shown, numbers=numbers, facts=JsonFacts(data))
        if fast is not None:
            valid, rejected = fast
            lines = data.split(b"\n") if rejected else []
            rows = [row for i in rejected for row in rows_of_jsonl(
                lines[numbers[i] - first_line], shown=shown, first_line=numbers[i])]  # fmt: skip
            return _merged(valid, rows, source=source, shown=shown), frame.columns if source.format == "table" else []
    if fast_only:
        return None
    rows = rows_of_jsonl(data, shown=shown, first_line=first_line)
    keys = list(dict.fromkeys(key for _, row in rows for key in row)) if source.format == "table" else []
    return source_rows(rows, source=source, shown=shown), keys


def _table_piece(
    frame: pl.DataFrame, *, first_row: int, source: SourceConfig, shown: str, fast_only: bool
) -> SourceRows | None:
    numbers = list(range(first_row, first_row + frame.height))
    fast = _batch(frame, source=source, shown=shown, numbers=numbers, facts=TypedFacts()) if frame.height else None
    if fast is not None:
        valid, rejected = fast
        rows: list[Row] = [(numbers[i], frame.row(i, named=True)) for i in rejected]
        return _merged(valid, rows, source=source, shown=shown)
    if fast_only:
        return None
    return source_rows(list(enumerate(frame.iter_rows(named=True), start=first_row)), source=source, shown=shown)


def _batch(
    frame: pl.DataFrame, *, source: SourceConfig, shown: str, numbers: list[int], facts: JsonFacts | TypedFacts
) -> tuple[SourceRows, list[int]] | None:
    """The part's valid rows on the batch path and the positions of the rows it rejects; ``None`` when not plain."""
    try:
        if source.format == "table":
            plan = table_plan(frame, facts, kind=source.kind, mapping=source.mapping)
        else:
            plan = BATCH_CONVERTERS[source.format](frame, facts)
        done = finish(frame, plan, kind=source.kind, numbers=numbers, shown=shown, facts=facts)
    except pl.exceptions.PolarsError:
        return None  # a shape the batch path did not foresee: the row path reads it
    if done is None:
        return None
    valid, rejected = done
    empty = build_frame(source.kind, [])[1]
    return SourceRows(kind=source.kind, valid=valid, invalid=empty, files=[shown]), rejected


def _merged(fast: SourceRows, rows: list[Row], *, source: SourceConfig, shown: str) -> SourceRows:
    """The batch path's valid rows and the row path's records of the part's other ``rows``, valid ones in file order."""
    if not rows:
        return fast
    slow = source_rows(rows, source=source, shown=shown)
    line = pl.col("meta").str.json_path_match("$.line").cast(pl.Int64)
    valid = pl.concat([fast.valid, slow.valid]).sort(line, maintain_order=True)
    return SourceRows(kind=fast.kind, valid=valid, invalid=slow.invalid, files=fast.files)


def _joined(parts: list[SourceRows]) -> SourceRows:
    """Consecutive parts of one file as one."""
    if len(parts) == 1:
        return parts[0]
    valid, invalid = pl.concat([p.valid for p in parts]), pl.concat([p.invalid for p in parts])
    return SourceRows(kind=parts[0].kind, valid=valid, invalid=invalid, files=parts[0].files)
