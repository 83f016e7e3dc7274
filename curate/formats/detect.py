"""``format: auto``: tell the format of a file from the keys of its first rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from curate.errors import InputError

__all__ = ["EXPECTED_KEYS", "detect_format", "natural_kind"]

# What each format expects, for the error message when detection fails.
EXPECTED_KEYS: dict[str, str] = {
    "messages": "messages [{role, content}]; or prompt/chosen/rejected message lists; "
    "or chosen_messages/rejected_messages; or prompt + completion (feedback)",
    "kto": "messages [{role, content}] + label (true/false)",
    "sharegpt": "conversations [{from, value}] (or messages with from/value), optional system, tools",
    "sharegpt_preference": "conversations [{from, value}] + chosen {from, value} + rejected {from, value}",
    "hh_rlhf": "chosen + rejected as text with '\\n\\nHuman:' / '\\n\\nAssistant:' markers",
    "alpaca": "instruction + output, optional input, system, history",
    "table": "any columns, with `mapping` in the source (e.g. {user: question, assistant: answer})",
}

_SAMPLE = 20


def _uses_from_value(messages: Any) -> bool:
    return isinstance(messages, list) and any(isinstance(m, dict) and "from" in m for m in messages)


def _format_of(row: dict[str, Any]) -> str | None:
    if "conversations" in row:
        return "sharegpt_preference" if "chosen" in row and "rejected" in row else "sharegpt"
    if "messages" in row:
        if _uses_from_value(row["messages"]):
            return "sharegpt"
        return "kto" if isinstance(row.get("label"), bool) else "messages"
    if "chosen_messages" in row and "rejected_messages" in row:
        return "messages"
    if "chosen" in row and "rejected" in row:
        return "hh_rlhf" if isinstance(row["chosen"], str) else "messages"
    if "prompt" in row and isinstance(row["prompt"], list):
        return "messages"
    if "instruction" in row and "output" in row:
        return "alpaca"
    return None


def detect_format(rows: Sequence[dict[str, Any]], *, path: str) -> str:
    """The conversational format of ``rows``, judged from the first few.

    Parameters
    ----------
    rows
        Input rows as dicts (at least the first ones of the file).
    path
        The file, as the pipeline names it, for the error message.

    Returns
    -------
    One of ``messages``, ``kto``, ``sharegpt``, ``sharegpt_preference``, ``hh_rlhf``, ``alpaca``.

    Raises
    ------
    InputError
        When the rows match no format or the first rows disagree. The message names the file,
        the keys it saw and the keys each format expects; set ``format`` (and for a plain table
        ``mapping``) in the source to fix it.
    """
    sample = list(rows[:_SAMPLE])
    found = {_format_of(row) for row in sample}
    if len(found) == 1 and None not in found:
        return found.pop()
    keys = sorted({key for row in sample for key in row})
    expected = "\n".join(f"  - {name}: {keys_}" for name, keys_ in EXPECTED_KEYS.items())
    why = "it has no rows" if not sample else f"the first rows have the keys {', '.join(keys)}"
    if len(found - {None}) > 1:
        why += f" and look like several formats ({', '.join(sorted(f for f in found if f))})"
    raise InputError(
        f"Cannot detect the format of {path}: {why}. "
        f"Set `format:` in the source to one of these (with the keys each expects):\n{expected}"
    )


def natural_kind(format: str, *, first_row: dict[str, Any] | None, mapping: dict[str, str] | None) -> str:
    """The record kind a format produces when the source does not set ``kind``.

    ``sharegpt_preference`` and ``hh_rlhf`` give preference, ``kto`` feedback; ``messages``
    depends on its keys (``messages`` sft, ``chosen``... preference, ``completion`` feedback, a lone
    ``prompt`` prompt);
    ``table`` depends on the mapping (``chosen`` preference, ``completion`` or ``feedback``
    feedback, ``prompt`` without ``assistant`` prompt); everything else is sft.
    """
    if format in ("sharegpt_preference", "hh_rlhf"):
        return "preference"
    if format == "kto":
        return "feedback"
    if format == "messages" and first_row is not None and "messages" not in first_row:
        if "completion" in first_row:
            return "feedback"
        return "preference" if {"chosen", "chosen_messages"} & set(first_row) else "prompt"
    if format == "table" and mapping:
        if "chosen" in mapping:
            return "preference"
        if {"completion", "feedback"} & set(mapping):
            return "feedback"
        if "prompt" in mapping and "assistant" not in mapping:
            return "prompt"
    return "sft"
