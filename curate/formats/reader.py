"""``read_source``: one pipeline source (file or glob) -> validated record frames."""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from curate.errors import InputError
from curate.formats._stream import blocks, plain_sft_block
from curate.formats.containers import Row, read_rows, rows_of_jsonl
from curate.formats.conversions import CONVERTERS
from curate.formats.detect import detect_format, natural_kind
from curate.formats.table import check_mapping, table_record
from curate.records import build_frame

if TYPE_CHECKING:
    from curate.config import SourceConfig

__all__ = ["BATCH_ROWS", "SourceRows", "read_source", "read_source_rows", "resolve_files"]

# Lines per block on the batch path: ~100 MB of typical chat JSONL, a bounded share of memory.
BATCH_ROWS = 100_000


@dataclass(frozen=True)
class SourceRows:
    """What one source produced.

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


def resolve_files(pattern: str, *, base_dir: Path) -> list[tuple[str, Path]]:
    """``(shown, path)`` for each file a source path names, sorted; ``shown`` is the path as written.

    A relative pattern resolves against ``base_dir`` and its matches are shown relative to it;
    an absolute one is shown absolute.
    """
    absolute = Path(pattern).expanduser().is_absolute()
    full = Path(pattern).expanduser() if absolute else base_dir / pattern
    if not glob.has_magic(pattern):
        return [(pattern, full)]
    matches = sorted(Path(p) for p in glob.glob(str(full), recursive=True))
    if not matches:
        raise InputError(f"The source path {pattern!r} matches no file (looked in {full.parent}).")
    return [(str(m) if absolute else m.relative_to(base_dir).as_posix(), m) for m in matches]


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


def _convert(rows: list[Row], *, source: SourceConfig, shown: str, kind: str | None) -> tuple[str, list[dict]]:
    format = source.format
    if format == "auto":
        format = "table" if source.mapping else detect_format([row for _, row in rows], path=shown)
    first = rows[0][1] if rows else None
    kind = kind or source.kind or natural_kind(format, first_row=first, mapping=source.mapping)
    if format == "table":
        columns = list(dict.fromkeys(key for _, row in rows for key in row))
        mapping = check_mapping(source.mapping, kind=kind, columns=columns, path=shown)
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
    return kind, records


def read_source(source: SourceConfig, *, base_dir: Path, batch_rows: int = BATCH_ROWS) -> SourceRows:
    """Read every file of a source and convert its rows to validated records.

    Parameters
    ----------
    source
        The source config: ``path`` (a file, glob or ``datasets`` folder, relative to
        ``base_dir`` unless absolute), ``format``, ``kind`` and ``mapping``.
    base_dir
        The folder relative paths resolve against (the pipeline file's folder).
    batch_rows
        Lines per block when a ``messages`` JSONL file is read in blocks (polars parses a block,
        ids are hashed per column); the result is the row path's, row for row.

    Returns
    -------
    :class:`SourceRows`. ``source`` holds each row's file as written; ``meta`` holds the row's
    1-based ``line`` (JSONL line, or row / item number elsewhere) and every input column no
    conversion used. ``len(valid) + len(invalid)`` equals the number of input rows.

    Raises
    ------
    InputError
        For a missing file, an unreadable or malformed file (with the line), a format that
        cannot be detected, or a mapping that does not fit the file.

    Examples
    --------
    >>> rows = read_source(SourceConfig(path="data/*.jsonl"), base_dir=Path("pipelines"))
    >>> rows.kind, rows.valid.height, rows.invalid["reason"].value_counts()
    """
    return _read(source, base_dir=base_dir, batch_rows=batch_rows)


def read_source_rows(source: SourceConfig, *, base_dir: Path) -> SourceRows:
    """:func:`read_source` row by row, every file through Python dicts (the reference path)."""
    return _read(source, base_dir=base_dir, batch_rows=None)


def _read(source: SourceConfig, *, base_dir: Path, batch_rows: int | None) -> SourceRows:
    kind: str | None = source.kind
    valid, invalid, files = [], [], []
    for shown, path in resolve_files(source.path, base_dir=base_dir):
        streamed = _read_blocks(path, source=source, shown=shown, rows=batch_rows) if batch_rows else None
        if streamed is None:
            kind, records = _convert(read_rows(path, shown=shown), source=source, shown=shown, kind=kind)
            streamed = [build_frame(kind, records)]
        else:
            kind = "sft"
        valid += [good for good, _ in streamed]
        invalid += [bad for _, bad in streamed]
        files.append(shown)
    return SourceRows(kind=kind, valid=pl.concat(valid), invalid=pl.concat(invalid), files=files)


def _streamable(path: Path, source: SourceConfig) -> bool:
    return (
        path.is_file()
        and path.suffix.lower() in (".jsonl", ".ndjson")
        and source.format in ("auto", "messages")
        and not source.mapping
        and source.kind in (None, "sft")
    )


def _read_blocks(path: Path, *, source: SourceConfig, shown: str, rows: int) -> list[tuple] | None:
    """``messages`` JSONL in blocks: plain blocks on the batch path, the others row by row.

    ``None`` when the file is not such a file (judged from its first block): read it whole.
    """
    if not _streamable(path, source):
        return None
    frames = []
    empty = build_frame("sft", [])[1]
    for block in blocks(path, rows=rows):
        fast = plain_sft_block(block, shown=shown)
        if fast is not None:
            frames.append((fast, empty))
            continue
        found = rows_of_jsonl(block.as_file(), shown=shown)
        if not frames:  # the first block decides whether this is a messages file at all
            format = source.format
            if format == "auto":
                format = detect_format([row for _, row in found], path=shown)
            if format != "messages" or natural_kind("messages", first_row=found[0][1] if found else None, mapping=None) != "sft":
                return None
        _, records = _convert(found, source=source.model_copy(update={"format": "messages"}), shown=shown, kind="sft")
        frames.append(build_frame("sft", records))
    return frames or None
