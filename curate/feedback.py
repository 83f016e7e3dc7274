"""What a ``feedback`` row's ``feedback`` field says about its completion: one rule for every reader.

The field is JSON text of the fields a user gave (``curate serve``'s ``POST /v1/feedback``:
``thumbs``, ``rating``, ``escalated``, ``correction``), or the plain ``up`` / ``down`` the
``kto`` reader writes. Each field is one signal about the completion:

========================= ==============
signal                    the completion
========================= ==============
``thumbs: up``            desirable
``thumbs: down``          undesirable
``rating`` 4 or 5         desirable
``rating`` 1 or 2         undesirable
``rating`` 3              no signal (``neutral_rating`` when it is the only field)
``escalated: true``       undesirable
``correction`` (non-empty) undesirable (the user wanted another answer)
========================= ==============

Signals that agree give the verdict; signals that disagree (thumbs up, rating 1) give none
(``conflicting_feedback``); a row with no feedback is ``no_feedback`` and one whose fields
carry no signal is ``no_signal``. KTO trains on the verdicts (:mod:`curate.train.data`);
the loop selects the undesirable ones as failures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["Verdict", "correction", "parse_feedback", "verdict"]

_THUMBS = {"up": True, "down": False, True: True, False: False}


@dataclass(frozen=True)
class Verdict:
    """Whether a completion was desirable, from its feedback.

    Attributes
    ----------
    desirable
        ``True`` / ``False``, or ``None`` when the feedback gives no usable signal.
    reason
        Why ``desirable`` is ``None`` (``no_feedback``, ``no_signal``, ``neutral_rating``,
        ``conflicting_feedback``); ``None`` when there is a verdict.
    signals
        The signals read, e.g. ``("thumbs_down", "escalated")``.
    """

    desirable: bool | None
    reason: str | None
    signals: tuple[str, ...] = ()


def parse_feedback(value: str | None) -> dict[str, Any]:
    """The feedback fields of one row: a JSON object as a dict, ``up`` / ``down`` as ``{"thumbs": ...}``.

    ``None`` or empty text is ``{}``; other text (not a JSON object) is ``{"text": value}``.
    """
    if value is None or not value.strip():
        return {}
    text = value.strip()
    if text.lower() in ("up", "down"):
        return {"thumbs": text.lower()}
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        return {"text": value}
    return parsed if isinstance(parsed, dict) else {"text": value}


def correction(value: str | None) -> str | None:
    """The corrected answer a user gave (stripped), or ``None``."""
    fixed = parse_feedback(value).get("correction")
    return fixed.strip() if isinstance(fixed, str) and fixed.strip() else None


def _rating(value: Any) -> int | None:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def verdict(value: str | None) -> Verdict:
    """The verdict of one row's ``feedback`` (see the module docstring for the rule)."""
    fields = parse_feedback(value)
    if not fields:
        return Verdict(None, "no_feedback")
    votes: dict[str, bool] = {}
    thumbs = fields.get("thumbs")
    thumbs = thumbs.lower() if isinstance(thumbs, str) else thumbs
    if thumbs in _THUMBS:
        votes[f"thumbs_{'up' if _THUMBS[thumbs] else 'down'}"] = _THUMBS[thumbs]
    rating = _rating(fields.get("rating"))
    if rating is not None and rating != 3:
        votes[f"rating_{rating}"] = rating >= 4
    if fields.get("escalated") is True:
        votes["escalated"] = False
    if correction(value) is not None:
        votes["correction"] = False
    signals = tuple(votes)
    if not votes:
        return Verdict(None, "neutral_rating" if rating == 3 else "no_signal")
    if len(set(votes.values())) > 1:
        return Verdict(None, "conflicting_feedback", signals)
    return Verdict(next(iter(votes.values())), None, signals)
