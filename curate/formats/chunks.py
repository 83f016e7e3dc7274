"""Parts of one input file read on their own: a block of JSONL lines, a chunk of a table.

What the local reader streams and what an engine's workers read in parallel (Ray Data's
``map_batches``): :func:`resolve_source` decides a file's format and kind once from its first rows,
then each part converts with :func:`read_jsonl_block` or :func:`read_table_chunk`, and the parts
in file order equal :func:`curate.formats.read_source` on the whole file, row for row.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from curate.formats._part import jsonl_part, table_part
from curate.formats._rows import SourceRows
from curate.formats.detect import detect_format, natural_kind
from curate.formats.parts import head_rows
from curate.formats.table import check_mapping

if TYPE_CHECKING:
    import pyarrow as pa

    from curate.config import SourceConfig

__all__ = ["SourceRows", "jsonl_block", "read_jsonl_block", "read_table_chunk", "resolve_source"]

# Rows format detection looks at (detect_format's sample).
_HEAD_ROWS = 20


def resolve_source(source: SourceConfig, *, path: Path, shown: str) -> SourceConfig:
    """``source`` with ``format`` and ``kind`` decided for one file, as :func:`read_source` decides them.

    Parameters
    ----------
    source
        The source config. ``format: auto`` becomes ``table`` when it has a ``mapping``, else
        the format :func:`curate.formats.detect_format` finds in the file's first rows; ``kind``
        ``None`` becomes the format's natural kind for the file's first row. A set value is kept.
        For a glob, pass the first file's resolved ``kind`` with the later files: every file of
        a source gives records of one kind.
    path
        The file (or ``datasets`` folder). Plain JSONL, CSV and Parquet files are read only as far
        as their first rows; other containers are read whole.
    shown
        The file as the pipeline names it, for error messages.

    Raises
    ------
    InputError
        When the first rows do not parse (with the file and line), the format cannot be detected,
        or a table's mapping names a column the file lacks (checked here when the container fixes
        its columns: CSV, Parquet, JSON arrays, ``datasets`` folders; for JSONL, where any line may
        add a key, the reader checks the mapping against every key once the file is read).

    Examples
    --------
    >>> resolve_source(SourceConfig(path="chats.jsonl"), path=Path("data/chats.jsonl"), shown="chats.jsonl")
    SourceConfig(path='chats.jsonl', format='messages', kind='sft', mapping=None)
    """
    rows, columns = head_rows(path, shown=shown, rows=_HEAD_ROWS)
    format = source.format
    if format == "auto":
        format = "table" if source.mapping else detect_format([row for _, row in rows], path=shown)
    first = rows[0][1] if rows else None
    kind = source.kind or natural_kind(format, first_row=first, mapping=source.mapping)
    if format == "table" and columns is not None:
        check_mapping(source.mapping, kind=kind, columns=columns, path=shown)
    return source.model_copy(update={"format": format, "kind": kind})


def read_jsonl_block(data: bytes, *, first_line: int, source: SourceConfig, shown: str) -> SourceRows:
    """Records of consecutive JSONL lines, exactly as :func:`read_source` gives them for those lines.

    Parameters
    ----------
    data
        Whole lines of a JSONL file (blank lines allowed), starting at line ``first_line``.
    first_line
        The 1-based file line ``data`` starts at: ``meta.line`` and error messages count from it.
    source
        The source with ``format`` and ``kind`` resolved (not ``auto`` / ``None``): use
        :func:`resolve_source` once per file.
    shown
        The file as the pipeline names it: the ``source`` column and error messages use it.

    Returns
    -------
    :class:`SourceRows` with the block's rows (``files`` is ``[shown]``). A plain block converts
    on the batch path (polars parses it, ids are hashed per column) and only its rows that fail
    validation row by row; a block that is not plain is cut into pieces, each tried again, and
    a piece that is not plain either is read row by row. Values, ids, reasons and details are
    the row path's.

    Raises
    ------
    InputError
        For a line that is not a JSON object (naming ``shown`` and the file line), or a format
        whose records cannot be read as ``kind``. A table's mapping is not checked against the
        columns here (this block may lack a key that other lines have): check it once per file
        with :func:`curate.formats.table.check_mapping` over every key of the file.
    """
    return jsonl_part(data, first_line=first_line, source=source, shown=shown)[0]


def jsonl_block(data: bytes, *, first_line: int, source: SourceConfig, shown: str) -> tuple[SourceRows, list[str]]:
    """:func:`read_jsonl_block`, and for a table the keys the block's lines have (its columns, for
    :func:`curate.formats.table.check_mapping` over the whole file); ``[]`` for other formats."""
    return jsonl_part(data, first_line=first_line, source=source, shown=shown)


def read_table_chunk(table: pa.Table | pl.DataFrame, *, first_row: int, source: SourceConfig, shown: str) -> SourceRows:
    """Records of a run of rows of a CSV, TSV or Parquet file, exactly as :func:`read_source` gives them.

    Parameters
    ----------
    table
        The rows, as read from the file: Parquet columns as stored; CSV cells as text, an empty
        cell as null (polars ``read_csv(infer_schema=False)``), since the row path reads CSV so.
    first_row
        The 1-based row number of the chunk's first row in its file (``meta.line``).
    source
        The source with ``format`` and ``kind`` resolved (:func:`resolve_source`); any format
        (a Parquet file may hold alpaca or ShareGPT rows), with a mapping for ``table``. The
        mapping's columns must have been checked against the file (``resolve_source`` does).
    shown
        The file as the pipeline names it.

    Returns
    -------
    :class:`SourceRows` with the chunk's rows (``files`` is ``[shown]``).

    A JSONL file read as a table should go through :func:`read_jsonl_block`: an Arrow table
    cannot tell a missing key from a null one, and the row path keeps only the keys a line has.
    """
    frame = table if isinstance(table, pl.DataFrame) else pl.from_arrow(table)
    return table_part(frame, first_row=first_row, source=source, shown=shown)
