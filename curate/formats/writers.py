"""Export records as JSONL in the formats trainers and other tools read.

========== ============================================================================
format     rows written
========== ============================================================================
messages   sft ``{"messages"}``; preference ``{"prompt", "chosen", "rejected"}``;
           prompt ``{"prompt"}`` (message lists of ``{role, content}``); feedback
           ``{"prompt", "completion", "feedback"?, "model"?, "ts"?}``
alpaca     sft ``{"instruction", "input", "output", "system"?, "history"?}``
sharegpt   sft ``{"conversations": [{from, value}], "system"?, "tools"?}``;
           preference ``{"conversations", "chosen": {from, value}, "rejected"}``
hh_rlhf    preference ``{"chosen", "rejected"}``: whole transcripts with ``\\n\\nHuman:`` /
           ``\\n\\nAssistant:`` markers (a system message is the text before the first)
kto        feedback ``{"messages", "label": bool}`` (the row's thumbs/rating verdict);
           preference as two such rows, chosen ``true`` and rejected ``false``
========== ============================================================================

A non-null ``label`` is written as ``"label"`` (and ``margin`` for preference), so reading a
messages, alpaca or sharegpt export back gives the same record ids; ``kto`` has its own boolean
``label`` and drops the row's.
"""

from __future__ import annotations

import bz2
import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Literal

import polars as pl

from curate.errors import InputError

__all__ = ["write_records"]

_TO_SHAREGPT = {"user": "human", "assistant": "gpt", "system": "system", "tool": "observation"}


class _Unfit(Exception):
    """A record that the target format cannot express (message says why)."""


def _labelled(out: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    for key in ("label", "margin"):
        if row.get(key) is not None:
            out[key] = row[key]
    return out


def _strip(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def _messages_row(row: dict[str, Any], kind: str) -> dict[str, Any]:
    columns = {"sft": ("messages",), "preference": ("prompt", "chosen", "rejected"), "prompt": ("prompt",),
               "feedback": ("prompt", "completion")}[kind]  # fmt: skip
    out = _labelled({column: _strip(row[column]) for column in columns}, row)
    if kind == "feedback":  # the prompt-completion log form (curate.formats.feedback reads it back)
        out.update({key: row[key] for key in ("feedback", "model", "ts") if row.get(key) is not None})
    return out


def _split_system(messages: list[dict[str, Any]]) -> tuple[str | None, list[dict[str, Any]]]:
    if messages and messages[0]["role"] == "system":
        return messages[0]["content"], messages[1:]
    return None, messages


def _alpaca_row(row: dict[str, Any], kind: str) -> dict[str, Any]:
    system, turns = _split_system(row["messages"])
    roles = [m["role"] for m in turns]
    if not roles or roles != ["user", "assistant"] * (len(roles) // 2):
        raise _Unfit(f"its roles are {roles}, and alpaca holds an optional system message then user/assistant pairs")
    pairs = [[turns[i]["content"], turns[i + 1]["content"]] for i in range(0, len(turns), 2)]
    (instruction, output), history = pairs[-1], pairs[:-1]
    out: dict[str, Any] = {"instruction": instruction, "input": "", "output": output}
    if system is not None:
        out["system"] = system
    if history:
        out["history"] = history
    return _labelled(out, row)


def _sharegpt_messages(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{"from": _TO_SHAREGPT[m["role"]], "value": m["content"]} for m in messages]


def _sharegpt_row(row: dict[str, Any], kind: str) -> dict[str, Any]:
    if kind == "preference":
        if len(row["chosen"]) != 1 or len(row["rejected"]) != 1:
            raise _Unfit("ShareGPT preference holds exactly one chosen and one rejected message")
        out = {"conversations": _sharegpt_messages(row["prompt"])}
        out |= {side: _sharegpt_messages(row[side])[0] for side in ("chosen", "rejected")}
        return _labelled(out, row)
    system, turns = _split_system(row["messages"])
    out = {"conversations": _sharegpt_messages(turns)}
    if system is not None:
        out["system"] = system
    tools = json.loads(row["meta"] or "{}").get("tools")
    if tools is not None:
        out["tools"] = tools
    return _labelled(out, row)


_HH = {"user": "Human", "assistant": "Assistant"}


def _transcript(messages: list[dict[str, Any]]) -> str:
    system, turns = _split_system(messages)
    if any(m["role"] not in _HH for m in turns):
        raise _Unfit(f"its roles are {[m['role'] for m in messages]}, and HH-RLHF transcripts hold only Human and Assistant turns")
    return (system or "") + "".join(f"\n\n{_HH[m['role']]}: {m['content']}" for m in turns)


def _hh_rlhf_row(row: dict[str, Any], kind: str) -> dict[str, Any]:
    if len(row["chosen"]) != 1 or len(row["rejected"]) != 1:
        raise _Unfit("HH-RLHF ends both transcripts with exactly one assistant answer")
    return _labelled({side: _transcript(row["prompt"] + row[side]) for side in ("chosen", "rejected")}, row)


def _kto_row(row: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    if kind == "preference":
        prompt = _strip(row["prompt"])
        return [{"messages": prompt + _strip(row["chosen"]), "label": True},
                {"messages": prompt + _strip(row["rejected"]), "label": False}]  # fmt: skip
    from curate.feedback import verdict

    judged = verdict(row["feedback"])
    if judged.desirable is None:
        raise _Unfit(f"its feedback gives no verdict ({judged.reason}); KTO needs desirable or undesirable")
    return [{"messages": _strip(row["prompt"]) + _strip(row["completion"]), "label": judged.desirable}]


_WRITERS: dict[str, tuple[tuple[str, ...], Callable[[dict[str, Any], str], dict[str, Any] | list[dict[str, Any]]]]] = {
    "messages": (("sft", "preference", "prompt", "feedback"), _messages_row),
    "alpaca": (("sft",), _alpaca_row),
    "sharegpt": (("sft", "preference"), _sharegpt_row),
    "hh_rlhf": (("preference",), _hh_rlhf_row),
    "kto": (("feedback", "preference"), _kto_row),
}


def _open(path: Path) -> IO[str]:
    suffix = path.suffix.lower()
    if suffix == ".gz":
        return gzip.open(path, "wt", encoding="utf-8")
    if suffix == ".bz2":
        return bz2.open(path, "wt", encoding="utf-8")
    return path.open("w", encoding="utf-8")


def write_records(
    frame: pl.DataFrame, *, kind: str, format: Literal["messages", "alpaca", "sharegpt", "hh_rlhf", "kto"], path: Path
) -> int:
    """Write records of ``kind`` as JSONL in ``format``, one object per line.

    Parameters
    ----------
    frame
        Records with the schema of ``kind`` (extra columns are ignored).
    kind
        The record kind of ``frame``.
    format
        ``messages`` (sft, preference, prompt, feedback), ``alpaca`` (sft), ``sharegpt`` (sft,
        preference), ``hh_rlhf`` (preference) or ``kto`` (feedback, preference).
    path
        The output file; a ``.gz`` or ``.bz2`` suffix compresses it. Its folder must exist.

    Returns
    -------
    The number of lines written (``kto`` writes two per preference row).

    Raises
    ------
    InputError
        When ``format`` cannot hold ``kind``, or a record does not fit it (e.g. a tool turn in
        alpaca; the message names the record id), or the folder of ``path`` does not exist.
        Nothing is left half-written.

    Examples
    --------
    >>> write_records(rows.valid, kind="sft", format="sharegpt", path=Path("out/train.jsonl"))
    """
    if format not in _WRITERS:
        raise InputError(f"Unknown export format {format!r}; use one of {', '.join(_WRITERS)}.")
    kinds, convert = _WRITERS[format]
    if kind not in kinds:
        raise InputError(f"The {format} format cannot hold {kind} records; it holds {', '.join(kinds)}.")
    lines = []
    for row in frame.iter_rows(named=True):
        try:
            out = convert(row, kind)
            lines += [json.dumps(o, ensure_ascii=False) for o in (out if isinstance(out, list) else [out])]
        except _Unfit as exc:
            raise InputError(
                f"Record {row['id']} cannot be written as {format}: {exc}. Export it as messages instead."
            ) from None
    if not path.parent.is_dir():
        raise InputError(f"Cannot write {path}: the folder {path.parent} does not exist. Create it first.")
    with _open(path) as out:
        out.writelines(line + "\n" for line in lines)
    return len(lines)
