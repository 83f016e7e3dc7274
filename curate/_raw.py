"""Raw input values as text: in a record column, and in the ``detail`` of a removed row.

A removed row keeps what made it invalid: :func:`removal_detail` writes the field, the problem
and the raw value as JSON text (cut at :data:`RAW_LIMIT` characters, with a note). A lone UTF-16
surrogate, which JSON can carry but UTF-8 (and so Arrow) cannot, stays as its ``\\uXXXX`` escape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

__all__ = ["RAW_LIMIT", "clean_text", "describe", "json_text", "lone_surrogate", "removal_detail", "scalar_text"]

# A removed row's ``detail`` keeps the raw value it was removed for, up to this many characters.
RAW_LIMIT = 2000
_SURROGATE = re.compile("[\ud800-\udfff]")


def scalar_text(value: Any) -> str | None:
    """A scalar as text: strings as they are, booleans ``true``/``false``, numbers as Python writes
    them (``7``, ``2.5``); ``None`` for ``None`` and for lists, dicts and other values."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    return None


def json_text(value: Any) -> str:
    """JSON text of any value; a lone surrogate is written as its ``\\uXXXX`` escape (still lossless)."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def removal_detail(field: str, problem: str, raw: Any = ...) -> str:
    """A removal detail: the field, what is wrong, and the raw value (JSON text, maybe truncated)."""
    out: dict[str, Any] = {"field": field, "problem": problem}
    if raw is not ...:
        text = json_text(raw)
        out["raw"] = text[:RAW_LIMIT]
        if len(text) > RAW_LIMIT:
            out["raw_truncated"] = f"first {RAW_LIMIT:,} of {len(text):,} characters"
    return json.dumps(out, ensure_ascii=False)


def describe(value: Any) -> str:
    """What a value is, in JSON's words: ``a string``, ``a number``, ``an object``..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float | Decimal):
        return "a number"
    for kind, name in ((str, "a string"), (list, "a list"), (Mapping, "an object")):
        if isinstance(value, kind):
            return name
    return f"a {type(value).__name__}"


def lone_surrogate(value: Any, where: str) -> tuple[str, str] | None:
    """``(path, string)`` of the first string under ``value`` holding a lone UTF-16 surrogate.

    ``path`` extends ``where``: ``messages[0].content``, ``meta.note[1]``, ``meta key``.
    """
    found = _find(value)
    if found is None:
        return None
    keys, text = found
    for key in reversed(keys):
        where += " key" if key is _KEY else f"[{key}]" if isinstance(key, int) else f".{key}"
    return where, text


_KEY = object()  # in a path: the surrogate is in the key itself


def _has_surrogate(text: str) -> bool:
    return not text.isascii() and _SURROGATE.search(text) is not None


def _find(value: Any) -> tuple[list[Any], str] | None:
    """``(keys from the inside out, string)``, or ``None``; paths are built only for a hit."""
    if isinstance(value, str):
        return ([], value) if _has_surrogate(value) else None
    items = value.items() if isinstance(value, Mapping) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if isinstance(key, str) and _has_surrogate(key):
            return [_KEY], key
        found = _find(item)
        if found:
            found[0].append(key)
            return found
    return None


def clean_text(text: str | None) -> str | None:
    """Text a removed row can store: a lone surrogate becomes U+FFFD (``detail`` keeps the raw)."""
    return text if text is None or text.isascii() else _SURROGATE.sub("\ufffd", text)
