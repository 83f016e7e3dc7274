"""Intent labeling in Argilla: push rows with a model's top-k label suggestions, pull the majority label.

A record shows the user's ``text`` (the turns a ``head`` run classifies) and the model's top
guesses with their probabilities (``guesses``); the ``label`` question (a LabelQuestion over the
label set) carries the top guess as an Argilla suggestion with its score, so the UI pre-selects
it. Record ids are row ids: pushing the same rows again adds nothing. The pushed row rides along
as JSON in the extra metadata ``curate_row`` (as in :mod:`curate.argilla.layout`), so the pull
needs Argilla alone.

Pulling turns each answered record into an ``sft`` row whose ``label`` is the majority of the
submitted labels (:func:`curate.argilla.answers.majority`); ``meta.argilla`` records annotators,
votes, agreement and whether the top suggestion was accepted. Intent rows keep the label as the
assistant answer (as the BANKING77 sample maps them): an ``sft`` row whose assistant answer was
its old label gets the new one, and a ``prompt`` or ``feedback`` row becomes its prompt plus the
label. Split votes (``no_majority``) and discards (``discarded``) become removed rows; records
nobody answered stay pending.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from curate.argilla.answers import Answer, majority
from curate.argilla.client import find_dataset, iter_records, upload_records, usernames
from curate.argilla.errors import ArgillaError
from curate.argilla.layout import ROW_KEY
from curate.argilla.push import PushResult
from curate.records import SCHEMAS, build_frame

if TYPE_CHECKING:
    import argilla as rg

__all__ = ["QUESTION", "IntentPull", "intent_settings", "pull_intent", "push_intent"]

log = logging.getLogger(__name__)

QUESTION = "label"
_SUGGESTIONS = ("suggested_labels", "suggested_scores")
GUIDELINES = (
    "Read the customer's **text** and pick the intent it expresses. The model's top guesses are listed "
    "with its confidence and the first one is pre-selected: change it when it is wrong. Discard a record "
    "that fits no intent."
)


def intent_settings(labels: list[str], *, min_submitted: int = 1) -> rg.Settings:
    """Argilla settings of an intent dataset: ``text``, ``guesses`` and the ``label`` question over ``labels``."""
    import argilla as rg

    visible = min(20, len(labels)) if len(labels) >= 3 else None  # the server shows at least 3 (or all)
    return rg.Settings(
        fields=[
            rg.TextField("text", title="Text"),
            rg.TextField("guesses", title="Model's top guesses", use_markdown=True, required=False),
        ],
        questions=[rg.LabelQuestion(QUESTION, labels=labels, title="Which intent is this?", visible_labels=visible)],
        metadata=[
            rg.TermsMetadataProperty("source", title="Source"),
            rg.FloatMetadataProperty("confidence", title="Model confidence", min=0.0, max=1.0),
            rg.TermsMetadataProperty("curate_ref", visible_for_annotators=False),
        ],
        guidelines=GUIDELINES,
        allow_extra_metadata=True,  # for ROW_KEY
        distribution=rg.TaskDistribution(min_submitted=min_submitted),
    )


def _guesses(labels: list[str], scores: list[float]) -> str:
    ranked = enumerate(zip(labels, scores, strict=True), start=1)
    return "\n".join(f"{i}. **{label}** ({score:.0%})" for i, (label, score) in ranked)


def _record(row: dict[str, Any], text: str, *, ref: str) -> rg.Record:
    """One row as a record: id = row id; the top suggestion as an Argilla suggestion with its score."""
    import argilla as rg

    labels, scores = row.get("suggested_labels") or [], row.get("suggested_scores") or []
    metadata: dict[str, Any] = {"curate_ref": ref, "source": row.get("source") or ""}
    suggestions = []
    if labels:
        metadata["confidence"] = float(scores[0])
        top = rg.Suggestion(QUESTION, labels[0], score=float(scores[0]), agent="curate:head", type="model")
        suggestions.append(top)
    stored = {k: v for k, v in row.items() if k not in _SUGGESTIONS}
    metadata[ROW_KEY] = json.dumps({**stored, "suggested": labels[:1]}, ensure_ascii=False, default=str)
    return rg.Record(
        id=row["id"],
        fields={"text": text, "guesses": _guesses(labels, scores) if labels else "(no suggestions)"},
        metadata=metadata,
        suggestions=suggestions,
    )


def _dataset(
    client: rg.Argilla, name: str, workspace: str, labels: list[str], *, min_submitted: int
) -> tuple[rg.Dataset, bool]:
    """Reuse ``name`` (checking its layout and label set) or create it; returns (dataset, created)."""
    import argilla as rg

    existing = find_dataset(client, name, workspace)
    if existing is None:
        settings = intent_settings(labels, min_submitted=min_submitted)
        return rg.Dataset(name=name, workspace=workspace, settings=settings, client=client).create(), True
    asked = next((q for q in existing.settings.questions if q.name == QUESTION), None)
    fields = {f.name for f in existing.settings.fields}
    if asked is None or type(asked).__name__ != "LabelQuestion" or "text" not in fields:
        raise ArgillaError(
            f"The Argilla dataset {name!r} in workspace {workspace!r} was not made by curate's intent push (it needs "
            f"a field `text` and a label question {QUESTION!r}). Pass another dataset name."
        )
    missing = sorted(set(labels) - set(asked.labels))
    if missing:
        raise ArgillaError(
            f"The Argilla dataset {name!r} asks for labels {', '.join(asked.labels)}; these rows need "
            f"{', '.join(missing)} too. Push them to a new dataset name."
        )
    return existing, False


def push_intent(
    frame: pl.DataFrame,
    *,
    client: rg.Argilla,
    dataset: str,
    labels: list[str],
    ref: str,
    workspace: str = "argilla",
    min_submitted: int = 1,
) -> PushResult:
    """Push rows to label to an Argilla intent dataset; rows already there (same id) are left alone.

    Parameters
    ----------
    frame
        ``sft``, ``prompt`` or ``feedback`` rows, with ``suggested_labels`` / ``suggested_scores``
        from :func:`curate.loop.propose.propose_labels` (optional: rows without them get no
        suggestion).
    client
        A connected SDK client (:func:`curate.argilla.client.connect`).
    dataset, workspace
        The Argilla dataset (created when missing) and its workspace.
    labels
        The label set annotators choose from (at least 2); every suggested label must be in it.
    ref
        Where the rows came from (e.g. ``loop:support/3`` or ``name@N``), stored on each record.
    min_submitted
        Answers wanted per record before Argilla marks it completed (new datasets only).
    """
    from curate.loop.propose import intent_texts

    labels = list(dict.fromkeys(labels))
    if len(labels) < 2:
        raise ArgillaError(f"An intent label question needs at least 2 labels; got {labels}.")
    suggested = frame["suggested_labels"].explode().drop_nulls() if "suggested_labels" in frame.columns else []
    unknown = sorted(set(suggested) - set(labels))
    if unknown:
        raise ArgillaError(
            f"The suggestions name labels outside the label set: {', '.join(unknown)}. Add them to `labels`."
        )
    ds, created = _dataset(client, dataset, workspace, labels, min_submitted=min_submitted)
    present = set() if created else {r["external_id"] for r in iter_records(client, ds.id, responses=False)}
    texts = zip(frame.iter_rows(named=True), intent_texts(frame), strict=True)
    new = [_record(row, text, ref=ref) for row, text in texts if row["id"] not in present]
    if new:
        upload_records(client, ds, new)
    existing = frame.height - len(new)
    log.info("pushed %d new intent records to %s/%s (%d already there)", len(new), workspace, dataset, existing)
    return PushResult(url=client.api_url, workspace=workspace, dataset=dataset, dataset_id=str(ds.id), ref=ref,
                      rows=frame.height, created=len(new), existing=existing, dataset_created=created)  # fmt: skip


@dataclass(frozen=True)
class IntentPull:
    """What a pull found: labeled ``sft`` rows, removed rows (``reason``, ``detail``), records still pending."""

    labeled: pl.DataFrame
    removed: pl.DataFrame
    pending: int
    answered: int


def _answers(records: list[dict], users: dict[str, str]) -> tuple[list[Answer], int]:
    answers, pending = [], 0
    for record in records:
        meta = record.get("metadata") or {}
        answer = Answer(row_id=record["external_id"], ref=meta.get("curate_ref"), row=meta.get(ROW_KEY))
        for response in record.get("responses") or []:
            who = users.get(response["user_id"], response["user_id"])
            value = ((response.get("values") or {}).get(QUESTION) or {}).get("value")
            if response["status"] == "discarded":
                answer.discarded_by.append(who)
            elif response["status"] == "submitted" and isinstance(value, str):
                answer.votes.append((who, value))
        if answer.votes or answer.discarded_by:
            answers.append(answer)
        else:
            pending += 1
    return answers, pending


def _messages(row: dict[str, Any], label: str | None) -> list[dict[str, str]]:
    """The sft conversation of a pushed row, with ``label`` as the answer where the row's answer is its label."""
    if row.get("messages"):
        messages = [dict(m) for m in row["messages"]]
        last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
        if label is not None and last is not None and messages[last]["content"] == row.get("label"):
            messages[last]["content"] = label
        return messages
    prompt = [dict(m) for m in row.get("prompt") or []]
    if label is not None:
        return [*prompt, {"role": "assistant", "content": label}]
    return prompt + [dict(m) for m in row.get("completion") or []]


def pull_intent(dataset: str, *, client: rg.Argilla, workspace: str = "argilla") -> IntentPull:
    """Answered records of an intent dataset as labeled ``sft`` rows, plus removed rows and the pending count.

    Parameters
    ----------
    dataset, workspace
        The Argilla dataset made by :func:`push_intent` and its workspace.
    client
        A connected SDK client with an owner's or admin's key (annotators cannot read all answers).

    Returns
    -------
    :class:`IntentPull`: ``labeled`` has the ``sft`` schema (new content ids; ``meta.argilla``
    has annotators, votes, agreement, ``suggested`` and ``accepted``; ``meta.pushed_id`` is the
    pushed row's id); ``removed`` has the ``sft`` schema with the pushed row's id, its old
    label, ``reason`` (``no_majority``, ``discarded``) and ``detail``; ``pending`` counts records
    with no submitted or discarded answer.
    """
    ds = find_dataset(client, dataset, workspace)
    if ds is None:
        raise ArgillaError(f"Argilla at {client.api_url} has no dataset {dataset!r} in workspace {workspace!r}.")
    answers, pending = _answers(list(iter_records(client, ds.id, responses=True)), usernames(client))
    if any(a.row is None for a in answers):
        raise ArgillaError(
            f"Records of {dataset!r} carry no pushed row (`{ROW_KEY}` metadata): they were not pushed by curate."
        )
    where = {"url": client.api_url, "workspace": workspace, "dataset": dataset}
    labeled, removed = [], []
    for answer in answers:
        row = json.loads(answer.row)
        outcome, agreement = majority(answer)
        votes = dict(Counter(vote for _, vote in answer.votes))
        if outcome in ("discarded", "no_majority"):
            removed.append(_removed(row, outcome, {"votes": votes, "discarded_by": answer.discarded_by,
                                                   "agreement": round(agreement, 4)}))  # fmt: skip
            continue
        meta = json.loads(row.get("meta") or "{}")
        suggested = (row.get("suggested") or [None])[0]
        meta["pushed_id"] = row["id"]
        meta["argilla"] = {**where, "annotators": [who for who, _ in answer.votes], "votes": votes,
                           "agreement": round(agreement, 4), "suggested": suggested,
                           "accepted": outcome == suggested}  # fmt: skip
        messages = _messages(row, outcome)
        labeled.append({"messages": messages, "label": outcome, "source": row.get("source"), "meta": meta})
    valid, invalid = build_frame("sft", labeled)
    if invalid.height:
        reasons = invalid["reason"].to_list()[:3]
        raise ArgillaError(f"{invalid.height} labeled rows of {dataset!r} are not valid sft rows: {reasons}")
    removed_frame = pl.DataFrame(removed, schema={**SCHEMAS["sft"], "reason": pl.String, "detail": pl.String})
    return IntentPull(labeled=valid, removed=removed_frame, pending=pending, answered=len(answers))


def _removed(row: dict[str, Any], reason: str, detail: dict[str, Any]) -> dict[str, Any]:
    """A pushed row nobody agreed on, as an sft-shaped removed row with its own id and old label."""
    return {"id": row["id"], "source": row.get("source"), "meta": row.get("meta") or "{}",
            "label": row.get("label"), "messages": _messages(row, None), "reason": reason,
            "detail": json.dumps(detail, sort_keys=True)}  # fmt: skip
