"""Anthropic HH-RLHF: ``chosen`` / ``rejected`` transcripts with ``Human:`` / ``Assistant:`` markers.

Both texts hold the whole conversation; they share everything before the last
``\\n\\nAssistant:`` and differ after it. That shared part becomes the preference ``prompt``
(a list of turns) and the two tails become the one-message ``chosen`` / ``rejected``.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["hh_rlhf", "transcript_turns"]

_ASSISTANT = "\n\nAssistant:"
_MARKER = re.compile(r"\n\n(Human|Assistant):")
_ROLES = {"Human": "user", "Assistant": "assistant"}


def transcript_turns(text: str) -> list[dict[str, str]]:
    """``"\\n\\nHuman: hi\\n\\nAssistant: hello"`` -> user/assistant messages (contents stripped).

    Text before the first marker, if any, is kept as a ``system`` message so nothing is lost.
    """
    parts = _MARKER.split(text)
    turns = [{"role": "system", "content": parts[0].strip()}] if parts[0].strip() else []
    for speaker, content in zip(parts[1::2], parts[2::2], strict=True):
        turns.append({"role": _ROLES[speaker], "content": content.strip()})
    return turns


def _split(text: Any) -> tuple[str, str | None]:
    """``(prefix, final answer)`` split at the last assistant marker; ``None`` when there is none."""
    text = text if isinstance(text, str) else ""
    cut = text.rfind(_ASSISTANT)
    if cut < 0:
        return text, None
    return text[:cut], text[cut + len(_ASSISTANT) :].strip()


def hh_rlhf(row: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """One HH-RLHF row -> a preference record.

    When the two prefixes differ (rare: a few rows were edited upstream), the chosen prefix is
    the prompt and ``meta["prefix_mismatch"]`` is true, so a later stage can filter them. A text
    with no assistant turn gives an empty ``chosen``/``rejected``, which validation removes.
    """
    prefix, chosen = _split(row.get("chosen"))
    rejected_prefix, rejected = _split(row.get("rejected"))
    # A side that is not text cannot be split; it stays in meta as given, so nothing is lost.
    meta = {k: v for k, v in row.items() if k not in ("chosen", "rejected") or not isinstance(v, str)}
    if rejected_prefix != prefix:
        meta["prefix_mismatch"] = True
    record = {
        "prompt": transcript_turns(prefix),
        "chosen": [] if chosen is None else [{"role": "assistant", "content": chosen}],
        "rejected": [] if rejected is None else [{"role": "assistant", "content": rejected}],
        "meta": meta,
    }
    return "preference", record
