"""Batch path for ``messages`` JSONL: polars parses a block of lines, ids hash a whole column.

A block takes this path only when it is plain: every row is ``{"messages": [{role, content}]}``
with text roles and contents, every row valid. Anything else (a bad line, an extra key, a
number where text belongs, an invalid row) returns ``None`` and the caller reads that block row
by row, so errors, reasons and details stay exactly the row path's. Ids are the row path's
:func:`curate.records.record_id`: ASCII conversations are hashed from a polars-built string,
others through ``record_id`` itself (NFC and Python's whitespace rules are not re-implemented).
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import xxhash

from curate._raw import clean_text
from curate.records import MESSAGES, ROLES, SCHEMAS, record_id

__all__ = ["Block", "blocks", "plain_sft_block"]

# A key followed by a string, in the two spacings JSON writers use (others: the row path).
_CONTENT_TEXT = (b'"content":"', b'"content": "')
_ROLE_TEXT = (b'"role":"', b'"role": "')
_MESSAGES_KEY = (b'"messages":[', b'"messages": [')
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
_LONE_HIGH = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])")
_LONE_LOW = re.compile(rb"(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}")
# Text where NFC is the identity and Python's and polars' whitespace classes agree.
_NOT_PLAIN = r"[^\x09-\x0d\x20-\x7e]"


class Block:
    """Consecutive lines of one JSONL file: ``first`` is the 1-based line of ``lines[0]``."""

    def __init__(self, first: int, lines: list[bytes]) -> None:
        self.first = first
        self.lines = lines

    def as_file(self) -> bytes:
        """The block with blank lines before it, so the row path numbers lines as in the file."""
        return b"\n" * (self.first - 1) + b"".join(self.lines)


def blocks(path: Path, *, rows: int) -> Iterator[Block]:
    """The file's lines, ``rows`` at a time."""
    with path.open("rb") as fh:
        first = 1
        while lines := list(itertools.islice(fh, rows)):
            yield Block(first, lines)
            first += len(lines)


def plain_sft_block(block: Block, *, shown: str) -> pl.DataFrame | None:
    """Valid ``sft`` rows of a plain block, with the row path's schema and ids; else ``None``."""
    numbers = [block.first + i for i, line in enumerate(block.lines) if line.strip(b" \t\r\n")]
    data = b"".join(block.lines)
    if not numbers or data.startswith(b"\xef\xbb\xbf") or _lone_surrogate(data):
        return None
    try:
        frame = pl.read_ndjson(io.BytesIO(data), infer_schema_length=None)
    except (pl.exceptions.PolarsError, ValueError):
        return None
    if frame.schema != pl.Schema({"messages": MESSAGES}) or frame.height != len(numbers):
        return None
    messages = pl.col("messages")
    roles = messages.list.eval(pl.element().struct.field("role"))
    checks = frame.select(
        n=messages.list.len().sum(),
        bad=(
            messages.is_null()
            | (messages.list.len() == 0)
            | ~roles.list.eval(pl.element().is_in(ROLES) & pl.element().is_not_null()).list.all()
            | ~roles.list.contains("assistant")
            | ~roles.list.contains("user")
        ).any(),
    ).row(0, named=True)
    # polars reads a number, a list or an object where text belongs as its JSON text: count
    # the keys followed by a string instead (a key written another way sends the block to the row path).
    texts = tuple(_count(data, keys) for keys in (_CONTENT_TEXT, _ROLE_TEXT, _MESSAGES_KEY))
    if checks["bad"] or texts != (checks["n"], checks["n"], frame.height):
        return None
    # ASCII without escapes holds no character where NFC or the whitespace classes differ.
    all_plain = data.isascii() and b"\\u" not in data
    # A compact copy: the frame read_ndjson returns keeps buffers several times its size alive
    # (1M rows: 4.9 GB peak kept as is, 2.3 GB copied).
    frame = frame.gather(pl.int_range(frame.height, eager=True))
    return _with_ids(frame, numbers=numbers, shown=shown, all_plain=all_plain)


def _count(data: bytes, spellings: tuple[bytes, bytes]) -> int:
    tight, spaced = spellings
    return data.count(tight) + data.count(spaced)


def _lone_surrogate(data: bytes) -> bool:
    """A ``\\uD800``-``\\uDFFF`` escape outside a pair (polars would read it as garbage)."""
    return bool(_SURROGATE.search(data)) and bool(_LONE_HIGH.search(data) or _LONE_LOW.search(data))


def _with_ids(frame: pl.DataFrame, *, numbers: list[int], shown: str, all_plain: bool) -> pl.DataFrame:
    message, content = pl.element().struct, pl.element().struct.field("content")
    # For ASCII text this folds whitespace as normalise_text does.
    turn = pl.concat_str(pl.lit("\x1f"), message.field("role"), pl.lit("\x1d"), _folded(content))
    keys = frame.select(pl.col("messages").list.eval(turn).list.join("")).to_series().to_list()
    if all_plain:
        odd = []
    else:
        odd_rows = frame.select(pl.col("messages").list.eval(content.str.contains(_NOT_PLAIN)).list.any()).to_series()
        odd = odd_rows.arg_true().to_list()
    by_row = dict(zip(odd, frame["messages"].gather(odd).to_list(), strict=True)) if odd else {}
    ids = [
        xxhash.xxh3_128_hexdigest(b"sft\x1emessages" + key.encode()) if i not in by_row
        else record_id("sft", {"messages": by_row[i]})
        for i, key in enumerate(keys)
    ]
    return frame.select(
        id=pl.Series(ids, dtype=pl.String),
        source=pl.lit(clean_text(shown), pl.String),
        meta=pl.concat_str(pl.lit('{"line": '), pl.Series(numbers).cast(pl.String), pl.lit("}")),
        messages=pl.col("messages"),
        label=pl.lit(None, pl.String),
    ).cast(dict(SCHEMAS["sft"]))


def _folded(text: pl.Expr) -> pl.Expr:
    """ASCII whitespace runs folded to one space, ends stripped (replacing lone spaces is slow)."""
    return text.str.replace_all(r"[\t-\r ]{2,}|[\t\n\x0b\x0c\r]", " ").str.strip_chars()
