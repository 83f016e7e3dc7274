"""One input file read in parts: JSONL in blocks of lines, CSV / TSV / Parquet in batches of rows.

What the streaming reader iterates over: no part holds more than ``rows`` rows, and each part
knows where it starts in its file (the 1-based line or row number), so a part converts on its own
(:mod:`curate.formats.chunks`) with the row numbers and error lines of the whole file.
Compressed files (``.gz``, ``.bz2``) are decompressed as they are read (JSONL) or whole (tables).
"""

from __future__ import annotations

import bz2
import gzip
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from curate.errors import InputError
from curate.formats.containers import OPENERS, Row, read_rows, rows_of_jsonl, table_frame

__all__ = ["JSONL", "TABLES", "container_of", "head_rows", "jsonl_blocks", "table_batches"]

JSONL = (".jsonl", ".ndjson")
TABLES = (".csv", ".tsv", ".parquet")
_STREAMS = {".gz": gzip.open, ".bz2": bz2.open}


def container_of(path: Path) -> tuple[str, str | None]:
    """``(suffix that tells the container, compression suffix or None)``; ``("", None)`` for a folder."""
    suffixes = [s.lower() for s in path.suffixes] if path.is_file() else []
    compression = suffixes.pop() if suffixes and suffixes[-1] in OPENERS else None
    return (suffixes[-1] if suffixes else ""), compression


def jsonl_blocks(path: Path, *, shown: str, rows: int) -> Iterator[tuple[int, bytes]]:
    """``(first line, bytes)`` of ``rows`` lines at a time (blank lines included)."""
    _, compression = container_of(path)
    first = 1
    try:
        with (_STREAMS[compression] if compression else open)(path, "rb") as fh:
            while lines := [line for _, line in zip(range(rows), fh, strict=False)]:
                yield first, b"".join(lines)
                first += len(lines)
    except (OSError, EOFError) as exc:
        if not compression:
            raise
        raise InputError(f"Cannot decompress {shown}: {exc}.") from None


def table_batches(path: Path, *, shown: str, rows: int) -> Iterator[tuple[int, pl.DataFrame]]:
    """A CSV, TSV or Parquet file ``rows`` rows at a time, each batch with the 1-based number of
    its first row; cells as :func:`curate.formats.containers.read_rows` reads them (CSV: all text)."""
    inner, compression = container_of(path)
    what = "Parquet" if inner == ".parquet" else "CSV"
    if compression:
        try:
            data = OPENERS[compression](path)
        except (OSError, EOFError) as exc:
            raise InputError(f"Cannot decompress {shown}: {exc}.") from None
        scan = table_frame(data, inner=inner, shown=shown).lazy()
    elif inner == ".parquet":
        scan = pl.scan_parquet(path)
    else:
        scan = pl.scan_csv(path, infer_schema=False, separator="\t" if inner == ".tsv" else ",")
    first = 1
    try:
        for batch in scan.collect_batches(chunk_size=rows):
            yield first, batch
            first += batch.height
    except pl.exceptions.PolarsError as exc:
        raise InputError(f"{shown}: not a readable {what} file ({exc}).") from None


def head_rows(path: Path, *, shown: str, rows: int) -> tuple[list[Row], list[str] | None]:
    """The first ``rows`` rows of a file, and its columns when the container fixes them.

    JSONL, CSV, TSV and Parquet files are read only as far as needed; JSONL has no fixed
    columns (``None``: a later line may add a key). JSON arrays and ``datasets`` folders are read
    whole, and their columns are every key of every row. Errors are ``read_rows``'s for those rows.
    """
    inner, _ = container_of(path)
    if inner in JSONL:
        found: list[Row] = []
        for first, data in jsonl_blocks(path, shown=shown, rows=rows):
            found += rows_of_jsonl(data, shown=shown, first_line=first)
            if len(found) >= rows:
                break
        return found, None
    if inner in TABLES:
        frame = next(table_batches(path, shown=shown, rows=rows), (1, pl.DataFrame()))[1]
        return list(enumerate(frame.iter_rows(named=True), start=1)), frame.columns
    found = read_rows(path, shown=shown)
    return found[:rows], list(dict.fromkeys(key for _, row in found for key in row))
