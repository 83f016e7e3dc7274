"""The batch path's common part: a parsed block -> record frame with the row path's values and ids.

A format's batch converter (``_batch_chat``, ``_batch_table``) turns the block's input columns
into the kind's record columns (:class:`Plan`); :func:`finish` adds ``meta`` (every input column
the conversion did not use, as the row path writes it), the content ids and the schema. A block
takes the batch path only when it is plain: every row valid, every value of a type whose text
polars and Python write alike. Anything else returns ``None`` and the caller converts the block
row by row, so values, reasons and details stay exactly the row path's.

polars cannot tell from a parsed JSONL frame what the JSON said in a few places (a number where
text belongs reads as its text; a missing key and ``null`` both read as null): :class:`JsonFacts`
counts keys in the raw bytes to rule those out. Frames read from Parquet or CSV need no such
check (:class:`TypedFacts`).
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field

import polars as pl
import xxhash

from curate._raw import clean_text
from curate.records import ROLES, SCHEMAS, conversation_columns, record_id

__all__ = [
    "SIMPLE_TYPES",
    "JsonFacts",
    "Plan",
    "TypedFacts",
    "finish",
    "json_value",
    "message",
    "parse_jsonl",
    "text_column",
]

_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
_LONE_HIGH = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])")
_LONE_LOW = re.compile(rb"(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}")
# Text where NFC is the identity and Python's and polars' whitespace classes agree.
_NOT_PLAIN = r"[^\x09-\x0d\x20-\x7e]"
# Column types whose values polars writes as text (and JSON) as Python does.
SIMPLE_TYPES = (pl.String, pl.Boolean, pl.Null, pl.Int8, pl.Int16, pl.Int32, pl.Int64,
                pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64)  # fmt: skip


@dataclass
class Plan:
    """How a block's input columns become records of ``kind``.

    ``columns``: expressions for the kind's record columns (missing ones are null); ``used``:
    input columns that do not go to ``meta``; ``meta``: extra ``meta`` entries as JSON text
    (a null leaves the key out for that row).
    """

    kind: str
    columns: dict[str, pl.Expr]
    used: tuple[str, ...]
    meta: dict[str, pl.Expr] = field(default_factory=dict)


class TypedFacts:
    """A frame read from a typed container: a string column held strings, every row has every column."""

    ascii_only = False

    def strings(self, key: str, count: int) -> bool:  # noqa: ARG002
        return True

    def every_row(self, key: str, height: int) -> bool:  # noqa: ARG002
        return True


class JsonFacts:
    """What the raw JSONL bytes of a block say that the parsed frame cannot."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        # ASCII without escapes holds no character where NFC or the whitespace classes differ.
        self.ascii_only = data.isascii() and b"\\u" not in data
        # A key followed by a string, in the spacings this block uses (a writer uses one).
        self._spellings = [s for s in (b'":"', b'": "') if s in data]

    def strings(self, key: str, count: int) -> bool:
        """Whether ``key`` is followed by a JSON string exactly ``count`` times (a key written
        another way, e.g. with an escape, counts too few and sends the block row by row)."""
        name = json.dumps(key, ensure_ascii=False).encode()[:-1]
        return sum(self.data.count(name + spelling) for spelling in self._spellings) == count

    def every_row(self, key: str, height: int) -> bool:
        """Whether ``key`` appears exactly ``height`` times: once in every row of the block."""
        return self.data.count(json.dumps(key, ensure_ascii=False).encode() + b":") == height


def parse_jsonl(data: bytes, *, first_line: int) -> tuple[pl.DataFrame, list[int]] | None:
    """The block as a frame and the file line of each row; ``None`` when polars cannot read it as the row path does."""
    # A final newline ends the last line; it does not start a blank one.
    lines = data.count(b"\n") + (not data.endswith(b"\n"))
    if data.count(b"\n{") + data.startswith(b"{") == lines:  # every line opens an object: none is blank
        numbers = list(range(first_line, first_line + lines))
    else:
        numbers = [first_line + i for i, line in enumerate(data.split(b"\n")) if line.strip(b" \t\r")]
    if not numbers or data.startswith(b"\xef\xbb\xbf") or _lone_surrogate(data):
        return None
    try:
        frame = pl.read_ndjson(io.BytesIO(data), infer_schema_length=None)
    except (pl.exceptions.PolarsError, ValueError):
        return None
    if frame.height != len(numbers):
        return None
    # A compact copy: the frame read_ndjson returns keeps buffers several times its size alive.
    return frame.gather(pl.int_range(frame.height, eager=True)), numbers


def _lone_surrogate(data: bytes) -> bool:
    """A ``\\uD800``-``\\uDFFF`` escape outside a pair (polars would read it as garbage)."""
    return bool(_SURROGATE.search(data)) and bool(_LONE_HIGH.search(data) or _LONE_LOW.search(data))


def message(role: str | pl.Expr, content: pl.Expr) -> pl.Expr:
    """One ``{role, content}`` struct per row."""
    return pl.struct(role=pl.lit(role) if isinstance(role, str) else role, content=content)


def text_column(frame: pl.DataFrame, facts: TypedFacts | JsonFacts, name: str, *, required: bool) -> bool:
    """Whether input column ``name`` holds only text (and no null when ``required``); absent: not ``required``."""
    if name not in frame.columns:
        return not required
    column = frame[name]
    if column.dtype == pl.Null:
        return not required
    if column.dtype != pl.String or (required and column.null_count()):
        return False
    return facts.strings(name, column.len() - column.null_count())


def finish(
    frame: pl.DataFrame, plan: Plan | None, *, kind: str, numbers: list[int], shown: str, facts: TypedFacts | JsonFacts
) -> tuple[pl.DataFrame, list[int]] | None:
    """The records of a plain block's valid rows (as the row path builds them) and the positions of
    the rows that failed validation (for the row path to remove with its reasons); ``None`` to read
    the whole block row by row."""
    if plan is None or plan.kind != kind or set(plan.meta) & (set(frame.columns) - set(plan.used)):
        return None  # a meta entry the plan sets that an input column would also set: row by row
    extras = [c for c in frame.columns if c not in plan.used and c != "line"]
    for name in extras:
        column = frame[name]
        if column.dtype not in SIMPLE_TYPES or not facts.every_row(name, frame.height):
            return None
        if column.dtype == pl.String and not facts.strings(name, column.len() - column.null_count()):
            return None
    schema = SCHEMAS[kind]
    records = frame.select(
        **{name: plan.columns.get(name, pl.lit(None)).cast(dtype) for name, dtype in schema.items()
           if name not in ("id", "source", "meta")},  # fmt: skip
        meta=_meta({**{name: json_value(pl.col(name)) for name in extras}, **plan.meta}, numbers),
    )
    valid = _valid(records, kind)
    rejected = (~valid).arg_true().to_list()
    records = records.filter(valid) if rejected else records
    ids = _ids(records, kind, ascii_only=facts.ascii_only)
    return records.with_columns(id=ids, source=pl.lit(clean_text(shown), pl.String)).select(list(schema)), rejected


def json_value(value: pl.Expr) -> pl.Expr:
    """A column of simple values as JSON text, as ``json.dumps(ensure_ascii=False)`` writes each."""
    return pl.struct(v=value).struct.json_encode().str.slice(5).str.strip_suffix("}")


def _meta(entries: dict[str, pl.Expr], numbers: list[int]) -> pl.Expr:
    """``meta`` JSON text: the entries and ``line``, keys sorted, Python's separators."""
    entries = {**entries, "line": pl.Series(numbers).cast(pl.String)}
    # Each entry as `, "key": value` (null drops it); the first `, ` becomes `{`.
    pieces = [pl.concat_str(pl.lit(f", {json.dumps(key, ensure_ascii=False)}: "), entries[key]).fill_null("")
              for key in sorted(entries)]
    return pl.concat_str(pl.lit("{"), pl.concat_str(pieces).str.slice(2), pl.lit("}"))


def _valid(records: pl.DataFrame, kind: str) -> pl.Series:
    """Per row: whether it surely passes :func:`curate.records.validate_record` (text columns are
    text by construction); a row marked ``False`` is judged by the row path."""
    checks = []
    for column in conversation_columns(kind):
        messages = pl.col(column)
        roles = messages.list.eval(pl.element().struct.field("role"))
        contents = messages.list.eval(pl.element().struct.field("content").is_not_null())
        known = roles.list.eval(pl.element().is_in(ROLES).fill_null(False)).list.all()
        checks.append(messages.is_not_null() & (messages.list.len() > 0) & known & contents.list.all())
    first = "messages" if kind == "sft" else "prompt"
    roles = pl.col(first).list.eval(pl.element().struct.field("role"))
    checks.append(roles.list.contains("user"))
    if kind == "sft":
        checks.append(roles.list.contains("assistant"))
    return records.select(pl.all_horizontal(checks).fill_null(False)).to_series()


def _ids(records: pl.DataFrame, kind: str, *, ascii_only: bool) -> pl.Series:
    """:func:`curate.records.record_id` of every row, hashed from polars-built keys where the text is plain."""
    content = pl.element().struct.field("content")
    turn = pl.concat_str(pl.lit("\x1f"), pl.element().struct.field("role"), pl.lit("\x1d"), _folded(content))
    parts = [pl.lit(kind)]
    for column in conversation_columns(kind):
        parts += [pl.lit(f"\x1e{column}"), pl.col(column).list.eval(turn).list.join("")]
    for column in ("label", "feedback"):
        if column in SCHEMAS[kind]:
            parts.append(pl.concat_str(pl.lit(f"\x1e{column}\x1d"), pl.col(column)).fill_null(""))
    keys = records.select(pl.concat_str(parts)).to_series().to_list()
    odd: list[int] = []
    if not ascii_only:
        unusual = [pl.col(c).list.eval(content.str.contains(_NOT_PLAIN)).list.any() for c in conversation_columns(kind)]
        odd = records.select(pl.any_horizontal(unusual)).to_series().arg_true().to_list()
    by_row = dict(zip(odd, records[odd].to_dicts(), strict=True)) if odd else {}
    ids = [xxhash.xxh3_128_hexdigest(key.encode()) if i not in by_row else record_id(kind, by_row[i])
           for i, key in enumerate(keys)]  # fmt: skip
    return pl.Series(ids, dtype=pl.String)


def _folded(text: pl.Expr) -> pl.Expr:
    """ASCII whitespace runs folded to one space, ends stripped (replacing lone spaces is slow)."""
    return text.str.replace_all(r"[\t-\r ]{2,}|[\t\n\x0b\x0c\r]", " ").str.strip_chars()
