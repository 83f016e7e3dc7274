"""The worker side of reading on Ray: count a byte range's newlines; read and convert one chunk.

Every chunk comes back as one Arrow table with the kind's columns plus ``reason`` / ``detail`` and
four markers: ``__invalid`` (an invalid row), ``__error`` (the chunk's :class:`InputError` instead of
rows), ``__file`` (the file's index) and ``__keys`` (a JSONL table chunk's keys, on its first row).
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import polars as pl
import pyarrow as pa

from curate.errors import InputError
from curate.formats import SourceRows, read_source, read_table_chunk
from curate.formats.chunks import jsonl_block
from curate.records import SCHEMAS

if TYPE_CHECKING:
    from curate.config import SourceConfig

__all__ = ["ERROR", "FILE", "INVALID", "KEYS", "File", "chunk_schema", "count_newlines", "read_chunk"]

INVALID, ERROR, FILE, KEYS = "__invalid", "__error", "__file", "__keys"


@dataclass(frozen=True)
class File:
    """One file of a source, with its format and kind resolved."""

    shown: str  # the path as the pipeline names it
    path: str
    base_dir: str  # what a relative `shown` is relative to
    source: SourceConfig

    @property
    def kind(self) -> str:
        return self.source.kind


def chunk_schema(kind: str) -> pl.Schema:
    return pl.Schema({**SCHEMAS[kind], "reason": pl.String, "detail": pl.String, INVALID: pl.Boolean,
                      ERROR: pl.String, FILE: pl.Int32, KEYS: pl.List(pl.String)})


def count_newlines(batch: pa.Table, *, files: list[File]) -> pa.Table:
    """The newlines in one item's byte range ``[start, end)``."""
    item = batch.to_pylist()[0]
    with open(files[item["file"]].path, "rb") as fh:
        fh.seek(item["start"])
        return pa.table({"newlines": [fh.read(item["end"] - item["start"]).count(b"\n")]})


def _line_start(fh: IO[bytes], at: int, size: int) -> int:
    """The first line start at or after byte ``at``: ``at`` itself when a newline ends the byte before."""
    if at <= 0 or at >= size:
        return min(max(at, 0), size)
    fh.seek(at - 1)
    if fh.read(1) == b"\n":
        return at
    return at + len(fh.readline())


def _jsonl(file: File, item: dict) -> tuple[SourceRows, list[str]]:
    """The lines that start in the item's byte range; ``item["first"]`` newlines come before it."""
    with open(file.path, "rb") as fh:
        size = fh.seek(0, 2)
        begin, stop = _line_start(fh, item["start"], size), _line_start(fh, item["end"], size)
        fh.seek(begin)
        data = fh.read(max(stop - begin, 0))
    first_line = item["first"] + 1 + (begin > item["start"])  # a line cut by `start` ends in a counted newline
    return jsonl_block(data, first_line=first_line, source=file.source, shown=file.shown)


def _parquet(file: File, item: dict) -> SourceRows:
    import pyarrow.parquet as pq

    table = pq.ParquetFile(file.path).read_row_groups(list(range(item["start"], item["end"])))
    return read_table_chunk(table, first_row=item["first"], source=file.source, shown=file.shown)


def _whole_file(file: File) -> SourceRows:
    # A name with glob characters is escaped; its rows then show the escaped name (`[[]`).
    path = glob.escape(file.shown) if glob.has_magic(file.shown) else file.shown
    return read_source(file.source.model_copy(update={"path": path}), base_dir=Path(file.base_dir))


def read_chunk(batch: pa.Table, *, files: list[File]) -> pa.Table:
    """One item (a one-row batch): its chunk's valid and invalid rows in one table, or its error."""
    item = batch.to_pylist()[0]
    file = files[item["file"]]
    schema = chunk_schema(file.kind)
    keys: list[str] = []
    try:
        if item["what"] == "jsonl":
            got, keys = _jsonl(file, item)
        else:
            got = _parquet(file, item) if item["what"] == "parquet" else _whole_file(file)
    except InputError as exc:
        return pl.DataFrame([{ERROR: str(exc), FILE: item["file"]}], schema=schema).to_arrow()
    rows = pl.concat([got.valid.with_columns(**{INVALID: pl.lit(False)}),
                      got.invalid.with_columns(**{INVALID: pl.lit(True)})], how="diagonal")
    markers = {ERROR: pl.lit(None, pl.String), FILE: pl.lit(item["file"], pl.Int32),
               KEYS: pl.Series(KEYS, [keys] + [None] * (rows.height - 1), pl.List(pl.String)) if rows.height else None}
    rows = rows.with_columns(**{k: v for k, v in markers.items() if v is not None})
    return rows.select([pl.col(c) if c in rows.columns else pl.lit(None, t).alias(c) for c, t in schema.items()]).cast(schema).to_arrow()
