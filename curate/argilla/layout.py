"""The Argilla dataset curate uses for pairwise preference: fields, question, metadata, records.

A record shows the ``prompt`` (a chat) and two candidates, ``response_a`` and ``response_b``.
Which candidate is A is decided per row by a hash of its id and a seed, so annotators do not
learn that A is usually the original ``chosen``, and pushing the same row again gives the
same assignment. The assignment is stored in the hidden metadata ``a_is`` (``chosen`` or
``rejected``); ``curate_ref`` (hidden) names where the row came from (``name@N`` for
``label push``, ``pipeline:OUTPUT`` for the ``label`` stage), and the extra metadata
``curate_row`` holds the row itself as JSON, so ``label pull`` can rebuild the pair from
Argilla alone, whoever filled the dataset.

Questions: ``preference`` is a LabelQuestion with ``a`` / ``b`` / ``tie`` / ``both_bad``
(or a RankingQuestion of ``a`` and ``b``, where equal ranks mean a tie), and ``rationale``
an optional TextQuestion.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any, Literal

import polars as pl
import xxhash

from curate.records import SCHEMAS

if TYPE_CHECKING:
    import argilla as rg

__all__ = [
    "LABELS",
    "QUESTION",
    "ROW_KEY",
    "QuestionKind",
    "a_is_chosen",
    "candidate_text",
    "preference_settings",
    "rows_frame",
    "to_argilla_record",
]

QUESTION = "preference"
RATIONALE = "rationale"
ROW_KEY = "curate_row"  # extra (undeclared) metadata: the pushed row as JSON
LABELS = {"a": "Response A", "b": "Response B", "tie": "Tie", "both_bad": "Both bad"}
QuestionKind = Literal["label", "ranking"]
GUIDELINES = (
    "Read the conversation in **prompt**, then the two candidate replies. Pick the reply you "
    "would rather the assistant give: more helpful, honest and harmless. Choose **Tie** when "
    "they are equally good and **Both bad** when neither is acceptable. A short rationale helps."
)


def preference_settings(*, question: QuestionKind = "label", rationale: bool = True) -> rg.Settings:
    """Argilla settings of a pairwise preference dataset (see the module docstring)."""
    import argilla as rg

    if question == "ranking":
        ask = rg.RankingQuestion(QUESTION, values={"a": LABELS["a"], "b": LABELS["b"]}, title="Rank the responses")
    else:
        ask = rg.LabelQuestion(QUESTION, labels=LABELS, title="Which response is better?")
    questions = [ask]
    if rationale:
        questions.append(rg.TextQuestion(RATIONALE, title="Why? (optional)", required=False))
    return rg.Settings(
        fields=[
            rg.ChatField("prompt", title="Prompt"),
            rg.TextField("response_a", title="Response A", use_markdown=True),
            rg.TextField("response_b", title="Response B", use_markdown=True),
        ],
        questions=questions,
        metadata=[
            rg.TermsMetadataProperty("label", title="Label"),
            rg.TermsMetadataProperty("source", title="Source"),
            rg.TermsMetadataProperty("curate_ref", visible_for_annotators=False),
            rg.TermsMetadataProperty("a_is", visible_for_annotators=False),
        ],
        guidelines=GUIDELINES,
        allow_extra_metadata=True,  # for ROW_KEY: undeclared, so it gets no filter in the UI
        distribution=rg.TaskDistribution(min_submitted=1),
    )


def a_is_chosen(row_id: str, *, seed: int = 0) -> bool:
    """Whether response A shows the row's ``chosen`` candidate (a stable coin flip per id)."""
    return xxhash.xxh3_64_intdigest(row_id.encode(), seed=seed) & 1 == 1


def candidate_text(messages: list[dict]) -> str:
    """One candidate as text: its content, or ``role: content`` blocks when it has several turns."""
    if len(messages) == 1:
        return messages[0]["content"]
    return "\n\n".join(f"**{m['role']}:** {m['content']}" for m in messages)


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-max(-50.0, min(50.0, x))))


def to_argilla_record(
    row: dict[str, Any], *, ref: str, question: QuestionKind, seed: int = 0, embed: bool = True
) -> rg.Record:
    """One preference row as an Argilla record whose id is the row id.

    A row with a ``margin`` (a reward model's or judge's score difference, chosen minus
    rejected) gets a suggestion for the chosen side with score ``sigmoid(margin)``. With
    ``embed`` the whole row (every column, ``split`` included) goes into ``curate_row``.
    """
    import argilla as rg

    flip = a_is_chosen(row["id"], seed=seed)
    a, b = (row["chosen"], row["rejected"]) if flip else (row["rejected"], row["chosen"])
    metadata = {"curate_ref": ref, "a_is": "chosen" if flip else "rejected", "source": row.get("source") or ""}
    if row.get("label") is not None:
        metadata["label"] = row["label"]
    if embed:
        metadata[ROW_KEY] = json.dumps(row, ensure_ascii=False, default=str)
    suggestions = []
    if row.get("margin") is not None:
        chosen_side = "a" if flip else "b"
        if question == "ranking":
            other = "b" if chosen_side == "a" else "a"
            value, score = [chosen_side, other], [_sigmoid(row["margin"]), 1 - _sigmoid(row["margin"])]
        else:
            value, score = chosen_side, _sigmoid(row["margin"])
        suggestions.append(rg.Suggestion(QUESTION, value, score=score, agent="curate:margin"))
    return rg.Record(
        id=row["id"],
        fields={
            "prompt": [{"role": m["role"], "content": m["content"]} for m in row["prompt"]],
            "response_a": candidate_text(a),
            "response_b": candidate_text(b),
        },
        metadata=metadata,
        suggestions=suggestions,
    )


def rows_frame(rows: list[str]) -> pl.DataFrame:
    """Rows embedded by :func:`to_argilla_record` (``curate_row`` JSON) as a frame.

    Preference columns get their schema types; other columns (``split``, ...) are inferred.
    """
    dicts = [json.loads(row) for row in rows]
    columns = list(dict.fromkeys(name for d in dicts for name in d))
    known = {name: dtype for name, dtype in SCHEMAS["preference"].items() if name in columns}
    return pl.DataFrame(dicts, schema_overrides=known, infer_schema_length=None).select(columns)
