"""Annotators' answers -> preference rows: majority vote, agreement, ties and discards.

Read from the server's REST payload, not the SDK: SDK 2.8.0 crashes on responses whose
``values`` is null and drops the ``rank`` numbers of RankingQuestion answers.

Per record, each *submitted* response is one vote: ``chosen`` (the annotator preferred the
row's original chosen candidate), ``rejected`` (they preferred the other one), ``tie`` or
``both_bad``. Drafts do not count; a record whose only answers are discards is ``discarded``.
The most frequent vote wins; equal top counts are ``no_majority``. Winning ``rejected`` swaps
chosen and rejected (the row gets a new content id and its margin is cleared).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from curate.argilla.errors import ArgillaError
from curate.argilla.layout import QUESTION, RATIONALE, ROW_KEY
from curate.records import SCHEMAS, build_frame

__all__ = ["Answer", "majority", "parse_answers", "resolve_answers"]


@dataclass
class Answer:
    """The non-draft responses to one record."""

    row_id: str
    ref: str | None
    row: str | None = None  # the pushed row as JSON (``curate_row``); None for records without it
    votes: list[tuple[str, str]] = field(default_factory=list)  # (annotator, chosen/rejected/tie/both_bad)
    discarded_by: list[str] = field(default_factory=list)
    rationales: list[dict[str, str]] = field(default_factory=list)


def _side(value: Any) -> str | None:
    """``a`` / ``b`` / ``tie`` / ``both_bad`` from a label value or a ranking ``[{value, rank}]``."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        ranks = {item.get("value"): item.get("rank") for item in value if isinstance(item, dict)}
        a, b = ranks.get("a"), ranks.get("b")
        if a is None or b is None:
            return None
        return "tie" if a == b else ("a" if a < b else "b")
    return None


def parse_answers(records: list[dict], *, users: dict[str, str]) -> tuple[list[Answer], int]:
    """Answers of the records that have at least one submitted or discarded response.

    Parameters
    ----------
    records
        Server JSON of the dataset's records with ``responses`` included.
    users
        User id -> username (ids are kept when a name is unknown).

    Returns
    -------
    ``(answers, pending)``: pending counts records with no submitted or discarded response.
    """
    answers, pending = [], 0
    for record in records:
        meta = record.get("metadata") or {}
        a_is_chosen = meta.get("a_is") == "chosen"
        answer = Answer(row_id=record["external_id"], ref=meta.get("curate_ref"), row=meta.get(ROW_KEY))
        for response in record.get("responses") or []:
            who = users.get(response["user_id"], response["user_id"])
            values = response.get("values") or {}
            if response["status"] == "discarded":
                answer.discarded_by.append(who)
            elif response["status"] == "submitted":
                side = _side((values.get(QUESTION) or {}).get("value"))
                if side in ("a", "b"):
                    side = "chosen" if (side == "a") == a_is_chosen else "rejected"
                if side is not None:
                    answer.votes.append((who, side))
                text = (values.get(RATIONALE) or {}).get("value")
                if text:
                    answer.rationales.append({"annotator": who, "text": text})
        if answer.votes or answer.discarded_by:
            answers.append(answer)
        else:
            pending += 1
    return answers, pending


def majority(answer: Answer) -> tuple[str, float]:
    """Winning vote (or ``discarded`` / ``no_majority``) and the share of votes that agree with it.

    Used for preference votes here and for intent labels (:mod:`curate.argilla.intent`).
    """
    if not answer.votes:
        return "discarded", 1.0
    counts = Counter(vote for _, vote in answer.votes).most_common()
    if len(counts) > 1 and counts[0][1] == counts[1][1]:
        return "no_majority", counts[0][1] / len(answer.votes)
    return counts[0][0], counts[0][1] / len(answer.votes)


def resolve_answers(
    rows: pl.DataFrame, answers: list[Answer], *, argilla: dict[str, Any]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Turn answers into kept preference rows and removed rows (``tie``, ``both_bad``, ...).

    Parameters
    ----------
    rows
        The pushed preference rows (any extra columns such as ``split`` are carried over);
        every answer's ``row_id`` must be among their ids.
    answers
        From :func:`parse_answers`.
    argilla
        Where the answers came from (url, workspace, dataset); stored in each row's ``meta``.

    Returns
    -------
    ``(kept, removed)``: kept rows with the preference schema (plus ``rows``' extra columns),
    chosen being the side the majority preferred and ``meta.argilla`` holding annotators,
    votes, agreement and rationales; removed rows as they were pushed plus ``reason`` and
    ``detail``.
    """
    by_id = {row["id"]: row for row in rows.iter_rows(named=True)}
    extra = [c for c in rows.columns if c not in SCHEMAS["preference"]]
    kept, kept_extra, removed = [], [], []
    for answer in answers:
        row = by_id[answer.row_id]
        outcome, agreement = majority(answer)
        votes = dict(Counter(vote for _, vote in answer.votes))
        if outcome in ("chosen", "rejected"):
            flipped = outcome == "rejected"
            meta = json.loads(row["meta"] or "{}")
            meta["argilla"] = {
                **argilla,
                "annotators": [who for who, _ in answer.votes],
                "votes": votes,
                "agreement": round(agreement, 4),
                "flipped": flipped,
                "rationales": answer.rationales,
            }
            new = {**row, "meta": meta}
            if flipped:
                new.update(chosen=row["rejected"], rejected=row["chosen"], margin=None)
            kept.append(new)
            kept_extra.append({c: row[c] for c in extra})
        else:
            detail = json.dumps(
                {"votes": votes, "discarded_by": answer.discarded_by, "agreement": round(agreement, 4)}, sort_keys=True
            )
            removed.append({**row, "reason": outcome, "detail": detail})
    valid, invalid = build_frame("preference", kept)  # recomputes ids: a flipped pair is new content
    if invalid.height:
        raise ArgillaError(f"{invalid.height} answered rows no longer validate: {invalid['reason'].to_list()[:3]}")
    if extra:
        valid = pl.concat(
            [valid, pl.DataFrame(kept_extra, schema={c: rows.schema[c] for c in extra})], how="horizontal"
        )
    removed_schema = {**rows.schema, "reason": pl.String, "detail": pl.String}
    return valid, pl.DataFrame(removed, schema=removed_schema)
