"""Prompt-completion rows (TRL's conversational form) -> ``feedback`` records: served traffic and its feedback.

A ``messages``-format row with ``prompt`` and ``completion`` is one logged answer, as ``curate
serve`` stores it and as a request log of vLLM (or any OpenAI-compatible server) is written for
curate (docs/generation.md)::

    {"prompt": [{"role": "user", "content": "hi"}], "completion": "Hello!", "model": "support-lora",
     "ts": "2026-12-02T06:00:00Z", "feedback": {"thumbs": "up"}, "request_id": "chatcmpl-..."}

``completion`` is a message list, one message, or the answer's text; ``feedback`` is text or an
object (stored as JSON text with sorted keys); every other key goes to ``meta``.
"""

from __future__ import annotations

import json
from typing import Any

from curate.formats.conversions import Converted, _extras, _openai_messages

__all__ = ["prompt_completion"]


def prompt_completion(row: dict[str, Any]) -> Converted:
    """``prompt`` + ``completion`` (+ ``feedback``, ``model``, ``ts``) -> feedback."""
    completion = row.get("completion")
    if isinstance(completion, str):
        completion = [{"role": "assistant", "content": completion}]
    elif isinstance(completion, dict):
        completion = [completion]
    feedback = row.get("feedback")
    if isinstance(feedback, dict):
        feedback = json.dumps(feedback, sort_keys=True, ensure_ascii=False)
    record = {
        "prompt": _openai_messages(row.get("prompt")),
        "completion": _openai_messages(completion),
        "feedback": feedback,
        "model": row.get("model"),
        "ts": row.get("ts"),
        "meta": _extras(row, ("prompt", "completion", "feedback", "model", "ts")),
    }
    return "feedback", record
