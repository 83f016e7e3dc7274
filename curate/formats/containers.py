"""File containers: one input file (or Hugging Face dataset folder) -> a list of plain dict rows.

Each row comes with its 1-based position: the physical line for JSONL (blank lines are
skipped, so the numbers match an editor), the row number for CSV, Parquet, JSON arrays and
``datasets`` folders. Compression is picked by suffix (``.gz``, ``.bz2``), then the container
by the suffix under it (``.jsonl``/``.ndjson``, ``.json``, ``.csv``/``.tsv``, ``.parquet``).
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from curate.errors import InputError

__all__ = ["OPENERS", "Row", "read_rows", "rows_of_jsonl", "table_frame"]

Row = tuple[int, dict[str, Any]]

_JSON_SPACE = " \t\r"  # whitespace JSON allows between values (\n splits lines)

OPENERS: dict[str, Callable[[Path], bytes]] = {
    ".gz": lambda path: gzip.decompress(path.read_bytes()),
    ".bz2": lambda path: bz2.decompress(path.read_bytes()),
}


def read_rows(path: Path, *, shown: str) -> list[Row]:
    """Read every row of one input file or ``datasets`` folder.

    Parameters
    ----------
    path
        The file, possibly ``.gz`` / ``.bz2`` compressed, or a folder written by
        ``datasets.Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``.
    shown
        How error messages name the file (the path as the pipeline wrote it).

    Returns
    -------
    ``(position, row)`` pairs in file order; ``position`` is 1-based.

    Raises
    ------
    InputError
        When the file is missing, its suffix is unknown, or its content does not parse.
    """
    if path.is_dir():
        return _read_hf_folder(path, shown=shown)
    if not path.is_file():
        raise InputError(f"Input file {shown} does not exist (looked at {path}).")
    suffixes = [s.lower() for s in path.suffixes] or [""]
    opener = OPENERS.get(suffixes[-1])
    if opener:
        suffixes.pop()
    inner = suffixes[-1] if suffixes else ""
    reader = _READERS.get(inner)
    if reader is None:
        raise InputError(
            f"Cannot tell how to read {shown}: the suffix {inner or '(none)'!r} is not one of "
            f"{', '.join(sorted(_READERS))}, optionally followed by .gz or .bz2. Rename the file."
        )
    try:
        data = opener(path) if opener else path.read_bytes()
    except (OSError, EOFError) as exc:
        raise InputError(f"Cannot decompress {shown}: {exc}.") from None
    return reader(data, shown)


def _decode(data: bytes, shown: str, *, first_line: int = 1) -> str:
    try:
        # A byte order mark counts only at the start of the file.
        return data.decode("utf-8-sig" if first_line == 1 else "utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + first_line
        column = exc.start - data.rfind(b"\n", 0, exc.start)  # 1-based byte of the line: the same for any block
        raise InputError(
            f"{shown}, line {line}: not UTF-8 text (column {column}: {exc.reason}); re-encode the file as UTF-8."
        ) from None


# Deepest JSON nesting read. Python's parser and encoder recurse once per level and stop near
# 1,000 levels (fewer, the deeper the caller's stack); real rows nest under ~20.
MAX_DEPTH = 100
# Strings (skipped whole), brackets, and integers longer than Python converts (4,300 digits).
_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]|\d{4301,}')
_TOO_DEEP = f"JSON nested more than {MAX_DEPTH} levels deep, deeper than curate reads; flatten or remove it"
_TOO_LONG = "an integer of more than 4,300 digits, which Python does not read; quote it as a string"


def _limit_line(text: str, *, depth_only: bool) -> int | None:
    """0-based line where ``text`` first nests past :data:`MAX_DEPTH` or holds an over-long integer."""
    depth = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        depth += 1 if token in "[{" else -1 if token in "]}" else 0
        if depth > MAX_DEPTH or (token[0].isdigit() and not depth_only):
            return text.count("\n", 0, match.start())
    return None


def _loads(text: str, *, shown: str, line: int = 1) -> Any:
    """``json.loads`` within Python's limits; past them, an error naming the file and line.

    Syntax errors (``JSONDecodeError``) pass through for the caller's message.
    """
    # Too few brackets to nest that deep is the common case, and skips the scan.
    offset = _limit_line(text, depth_only=True) if text.count("[") + text.count("{") > MAX_DEPTH else None
    if offset is not None:
        raise InputError(f"{shown}, line {line + offset}: {_TOO_DEEP}.")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except ValueError:  # Python refuses to convert integers of more than 4,300 digits
        offset = _limit_line(text, depth_only=False) or 0
        raise InputError(f"{shown}, line {line + offset}: {_TOO_LONG}.") from None


def rows_of_jsonl(data: bytes, *, shown: str, first_line: int = 1) -> list[Row]:
    """Rows of JSONL bytes, numbered by physical line from ``first_line`` (the file line ``data``
    starts at); bad lines raise :class:`InputError` naming the file and that line."""
    return _read_jsonl(data, shown, first_line=first_line)


def _read_jsonl(data: bytes, shown: str, *, first_line: int = 1) -> list[Row]:
    rows: list[Row] = []
    # Split on \n only: str.splitlines() also breaks at U+2028, U+2029, U+0085 and others,
    # which JSON allows raw inside strings (and curate's own exports write raw).
    text = _decode(data, shown, first_line=first_line)
    for number, line in enumerate(text.split("\n"), start=first_line):
        if not line.strip(_JSON_SPACE):
            continue
        try:
            row = _loads(line, shown=shown, line=number)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"{shown}, line {number}: not valid JSON ({exc.msg} at column {exc.colno}). "
                "Each line of a JSONL file must hold one JSON object; fix or remove that line."
            ) from None
        if not isinstance(row, dict):
            raise InputError(f"{shown}, line {number}: expected a JSON object, found {type(row).__name__}.")
        rows.append((number, row))
    return rows


def _read_json(data: bytes, shown: str) -> list[Row]:
    try:
        document = _loads(_decode(data, shown), shown=shown)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # a JSONL file named .json
            return _read_jsonl(data, shown)
        raise InputError(f"{shown}, line {exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno}).") from None
    items = _json_items(document)
    if items is None:
        raise InputError(
            f"{shown}: expected a JSON array of objects, one object, or an object holding one list "
            f"of objects; found {type(document).__name__}."
        )
    for index, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise InputError(f"{shown}, item {index}: expected a JSON object, found {type(item).__name__}.")
    return list(enumerate(items, start=1))


def _json_items(document: Any) -> list[Any] | None:
    """Rows of a JSON document: an array, a wrapper like ``{"data": [...]}``, or one record."""
    if isinstance(document, list):
        return document
    if not isinstance(document, dict):
        return None
    lists = [v for v in document.values() if isinstance(v, list) and v and all(isinstance(x, dict) for x in v)]
    # {"conversations": [{"from": ...}]} is one record, not a wrapper: its list holds messages.
    if len(document) == 1 and len(lists) == 1 and not any({"from", "role"} & set(x) for x in lists[0]):
        return lists[0]
    return [document]


def table_frame(data: bytes, *, inner: str, shown: str) -> pl.DataFrame:
    """A whole CSV, TSV or Parquet file (``inner``: its suffix) as the row path reads it: CSV cells as text."""
    try:
        if inner == ".parquet":
            return pl.read_parquet(io.BytesIO(data))
        return pl.read_csv(data, infer_schema=False, separator="\t" if inner == ".tsv" else ",")
    except pl.exceptions.PolarsError as exc:
        what = "Parquet" if inner == ".parquet" else "CSV"
        raise InputError(f"{shown}: not a readable {what} file ({exc}).") from None


def _read_table(data: bytes, shown: str, *, inner: str) -> list[Row]:
    return list(enumerate(table_frame(data, inner=inner, shown=shown).iter_rows(named=True), start=1))


def _read_hf_folder(path: Path, *, shown: str) -> list[Row]:
    if not ((path / "dataset_dict.json").is_file() or (path / "state.json").is_file()):
        raise InputError(
            f"{shown} is a folder but not a Hugging Face dataset saved with save_to_disk "
            "(no dataset_dict.json or state.json inside). Point `path` at a file or a glob."
        )
    import datasets  # slow to import; only needed for this container

    loaded = datasets.load_from_disk(str(path))
    if isinstance(loaded, datasets.Dataset):
        return list(enumerate(loaded, start=1))
    rows: list[Row] = []
    for split, part in loaded.items():
        # The split travels in the row so it reaches meta; positions restart per split.
        rows.extend((index, {**row, "split": split}) for index, row in enumerate(part, start=1))
    return rows


_READERS: dict[str, Callable[[bytes, str], list[Row]]] = {
    ".jsonl": _read_jsonl,
    ".ndjson": _read_jsonl,
    ".json": _read_json,
    ".csv": lambda data, shown: _read_table(data, shown, inner=".csv"),
    ".tsv": lambda data, shown: _read_table(data, shown, inner=".tsv"),
    ".parquet": lambda data, shown: _read_table(data, shown, inner=".parquet"),
}

