"""One function per conversational format: an input row (a dict) -> ``(kind, record)``.

A record is a canonical dict of :mod:`curate.records` with ``meta`` as a dict. Keys a
conversion does not use go to ``meta`` unchanged, so nothing in the input is lost. A row that
does not fit (a role we do not know, no messages) still converts: validation in
:func:`curate.records.build_frame` then removes it with a reason, never a crash.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from curate.formats.hh_rlhf import hh_rlhf

__all__ = [
    "CONVERTERS",
    "SHAREGPT_ROLES",
    "Converted",
    "alpaca",
    "as_number",
    "hh_rlhf",
    "kto",
    "message_text",
    "messages",
    "sharegpt",
    "sharegpt_preference",
]

Converted = tuple[str, dict[str, Any]]

# ShareGPT speaker names -> canonical roles. A function call is what the assistant said.
SHAREGPT_ROLES = {
    "human": "user",
    "gpt": "assistant",
    "system": "system",
    "function_call": "assistant",
    "observation": "tool",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
}


# Keys of one message that become its role and content (and, for `messages`, meta["loss_weight"]).
_MESSAGE_KEYS = frozenset({"role", "content", "from", "value"})
_LOSS_WEIGHTED = _MESSAGE_KEYS | {"loss_weight"}


def _message_extras(message: Any, known: frozenset[str]) -> dict[str, Any]:
    if not isinstance(message, dict) or not _MESSAGE_KEYS & message.keys():
        return {}
    # tool_calls become the content of a message that has none (see _openai_message)
    used = known | ({"tool_calls"} if message.get("content") is None else set())
    return {k: v for k, v in message.items() if k not in used}


def _extras(row: dict[str, Any], used: Iterable[str], *, known: frozenset[str] = _MESSAGE_KEYS) -> dict[str, Any]:
    """The row's keys that a conversion did not use: they go to ``meta``.

    So do the keys of each message beyond its role and content (``name``, ``tool_call_id``,
    axolotl's ``weight``...): ``meta["message_extras"]`` maps the input column to one dict per
    message, in input order, when any message has one.
    """
    skip = set(used)
    meta = {k: v for k, v in row.items() if k not in skip}
    per_column = {}
    for column, value in row.items():
        if column not in skip:
            continue
        extras = [_message_extras(m, known) for m in (value if isinstance(value, list) else [value])]
        if any(extras):
            per_column[column] = extras if isinstance(value, list) else extras[0]
    if per_column:
        meta["message_extras"] = per_column
    return meta


def _with_label(record: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    if row.get("label") is not None:
        record["label"] = row["label"]
    return record


def message_text(content: Any) -> Any:
    """Message content as text: strings stay, typed parts ``[{type, text|value}]`` are joined.

    Parts are joined with newlines. Content with a non-text part (an image, audio) is returned
    unchanged, so validation removes the row as ``malformed_message`` instead of losing the part.
    """
    if not isinstance(content, list):
        return content
    texts = []
    for part in content:
        if not isinstance(part, dict) or part.get("type", "text") != "text":
            return content
        texts.append(part.get("text", part.get("value")))
    if not all(isinstance(t, str) for t in texts):
        return content
    return "\n".join(texts)


def _openai_message(message: Any) -> Any:
    if not isinstance(message, dict):
        return message
    content = message.get("content")
    if content is None and message.get("tool_calls"):
        content = json.dumps(message["tool_calls"], ensure_ascii=False)
    return {"role": message.get("role"), "content": message_text(content)}


def _openai_messages(messages: Any) -> Any:
    return [_openai_message(m) for m in messages] if isinstance(messages, list) else messages


def _sharegpt_message(message: Any) -> Any:
    if not isinstance(message, dict):
        return message
    speaker = message.get("from")
    return {"role": SHAREGPT_ROLES.get(speaker, speaker), "content": message_text(message.get("value"))}


def _sharegpt_messages(messages: Any) -> Any:
    return [_sharegpt_message(m) for m in messages] if isinstance(messages, list) else messages


def _with_system(system: Any, messages: Any) -> Any:
    """A ``system`` column becomes the first message (empty or missing adds nothing)."""
    if not system or not isinstance(messages, list):
        return messages
    return [{"role": "system", "content": system}, *messages]


def alpaca(row: dict[str, Any]) -> Converted:
    """Alpaca: ``instruction`` (+ ``input`` after a blank line) -> user, ``output`` -> assistant.

    Optional ``system`` opens the conversation and ``history`` ``[[query, answer], ...]``
    supplies the earlier turns.
    """
    user = row.get("instruction")
    if row.get("input"):
        user = f"{user}\n\n{row['input']}"
    turns: list[Any] = []
    history = row.get("history") or []
    # A history that is not a list counts as one malformed pair (a string is not split into
    # characters, a dict not into its keys), so the row is removed with the value kept.
    for pair in history if isinstance(history, list) else [history]:
        query, answer = pair if isinstance(pair, list | tuple) and len(pair) == 2 else (pair, None)
        turns += [{"role": "user", "content": query}, {"role": "assistant", "content": answer}]
    turns += [{"role": "user", "content": user}, {"role": "assistant", "content": row.get("output")}]
    used = ("instruction", "input", "output", "system", "history", "label")
    record = {"messages": _with_system(row.get("system"), turns), "meta": _extras(row, used)}
    return "sft", _with_label(record, row)


def sharegpt(row: dict[str, Any]) -> Converted:
    """ShareGPT: ``conversations`` (or ``messages``) of ``{from, value}``, optional ``system``, ``tools``.

    Speakers map through :data:`SHAREGPT_ROLES`; an unknown speaker is kept as the role so the
    row is removed as ``unknown_role``. ``tools`` goes to ``meta["tools"]``.
    """
    column = "conversations" if "conversations" in row else "messages"
    turns = _sharegpt_messages(row.get(column))
    used = (column, "system", "label")
    record = {"messages": _with_system(row.get("system"), turns), "meta": _extras(row, used)}
    return "sft", _with_label(record, row)


def sharegpt_preference(row: dict[str, Any]) -> Converted:
    """ShareGPT preference: ``conversations`` is the prompt; ``chosen`` / ``rejected`` are one message each."""
    prompt = _with_system(row.get("system"), _sharegpt_messages(row.get("conversations")))
    answers = {side: _sharegpt_message(row.get(side)) for side in ("chosen", "rejected")}
    record = {
        "prompt": prompt,
        **{side: [m] if m is not None else [] for side, m in answers.items()},
        "meta": _extras(row, ("conversations", "system", "chosen", "rejected", "label")),
    }
    return "preference", _with_label(record, row)


def as_number(value: Any) -> float | None:
    """``value`` as a float (``"0.5"`` too), or ``None`` when it is missing or not a number."""
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _split_last_turn(messages: Any) -> tuple[Any, list[Any]]:
    """``(prompt, answer)`` split before the last assistant message; no assistant turn: empty answer.

    Anything after that message (rare: a trailing user turn) stays in the answer, never dropped.
    """
    if not isinstance(messages, list):
        return messages, []
    for i in range(len(messages) - 1, -1, -1):
        if isinstance(messages[i], dict) and messages[i].get("role") == "assistant":
            return messages[:i], messages[i:]
    return messages, []


def _loss_weights(messages: Any) -> dict[str, Any]:
    if isinstance(messages, list) and any(isinstance(m, dict) and "loss_weight" in m for m in messages):
        return {"loss_weight": [m.get("loss_weight") if isinstance(m, dict) else None for m in messages]}
    return {}


def messages(row: dict[str, Any]) -> Converted:
    """OpenAI-style ``{role, content}`` lists, content as text or typed parts.

    - ``messages`` -> sft (per-turn ``loss_weight`` of LLaMA-Factory v1 kept in ``meta``);
    - ``prompt`` + ``chosen`` + ``rejected`` lists -> preference (TRL's explicit-prompt form);
    - ``chosen_messages`` / ``rejected_messages`` or ``chosen`` / ``rejected`` holding whole
      conversations -> preference split at the last assistant turn; when the two prompts
      differ, the chosen one is kept and ``meta["prefix_mismatch"]`` is true;
    - ``prompt`` + ``completion`` -> feedback (:mod:`curate.formats.feedback`: served answers, logs);
    - only ``prompt`` -> prompt.
    """
    if "prompt" in row and "completion" in row:
        from curate.formats.feedback import prompt_completion  # imports this module

        return prompt_completion(row)
    if "messages" in row:
        turns = row["messages"]
        record = {
            "messages": _openai_messages(turns),
            "meta": {**_extras(row, ("messages", "label"), known=_LOSS_WEIGHTED), **_loss_weights(turns)},
        }
        return "sft", _with_label(record, row)
    if "chosen" not in row and "chosen_messages" not in row:
        record = {"prompt": _openai_messages(row.get("prompt")), "meta": _extras(row, ("prompt", "label"))}
        return "prompt", _with_label(record, row)
    used = ("prompt", "chosen", "rejected", "chosen_messages", "rejected_messages", "label", "margin")
    record = {"margin": as_number(row.get("margin")), "meta": _extras(row, used)}
    if record["margin"] is None and row.get("margin") not in (None, ""):
        record["meta"]["margin"] = row["margin"]  # not a number: kept, not guessed
    if "prompt" in row:
        record |= {side: _openai_messages(row.get(side)) for side in ("prompt", "chosen", "rejected")}
        return "preference", _with_label(record, row)
    chosen = _openai_messages(row.get("chosen_messages", row.get("chosen")))
    rejected = _openai_messages(row.get("rejected_messages", row.get("rejected")))
    record["prompt"], record["chosen"] = _split_last_turn(chosen)
    rejected_prompt, record["rejected"] = _split_last_turn(rejected)
    if rejected_prompt != record["prompt"]:
        record["meta"]["prefix_mismatch"] = True
    return "preference", _with_label(record, row)


_THUMBS = {True: "up", False: "down"}


def kto(row: dict[str, Any]) -> Converted:
    """KTO: ``messages`` + boolean ``label`` -> feedback.

    ``prompt`` is every message before the last assistant turn, ``completion`` that turn, and
    ``feedback`` is ``"up"`` for ``label: true``, ``"down"`` for ``false`` (anything else:
    ``None``, with the raw value kept in ``meta["label"]``).
    """
    prompt, completion = _split_last_turn(_openai_messages(row.get("messages")))
    label = row.get("label")
    feedback = _THUMBS.get(label) if isinstance(label, bool) else None
    meta = _extras(row, ("messages", "label") if feedback else ("messages",))
    return "feedback", {"prompt": prompt, "completion": completion, "feedback": feedback, "meta": meta}


CONVERTERS: dict[str, Callable[[dict[str, Any]], Converted]] = {
    "alpaca": alpaca,
    "sharegpt": sharegpt,
    "sharegpt_preference": sharegpt_preference,
    "messages": messages,
    "kto": kto,
    "hh_rlhf": hh_rlhf,
}
