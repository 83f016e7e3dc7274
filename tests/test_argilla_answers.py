"""Annotators' answers -> preference rows, on server-shaped JSON (no server needed)."""

from __future__ import annotations

import json

import polars as pl
import pytest

from curate.argilla.answers import parse_answers, resolve_answers
from curate.records import build_frame

USERS = {"u1": "ann1", "u2": "ann2", "u3": "ann3"}


def _rows() -> pl.DataFrame:
    pairs = [
        {
            "prompt": [{"role": "user", "content": f"question {i}"}],
            "chosen": [{"role": "assistant", "content": f"good {i}"}],
            "rejected": [{"role": "assistant", "content": f"bad {i}"}],
            "margin": 1.5,
            "meta": {"line": i},
        }
        for i in range(3)
    ]
    valid, _ = build_frame("preference", pairs)
    return valid.with_columns(split=pl.Series(["train", "test", "train"]))


def _record(row_id: str, responses: list[tuple[str, str, object]], *, a_is: str = "chosen") -> dict:
    return {
        "external_id": row_id,
        "metadata": {"a_is": a_is, "curate_ref": "prefs@0"},
        "responses": [{"user_id": u, "status": s, "values": v} for u, s, v in responses],
    }


def _vote(value: object, rationale: str | None = None) -> dict:
    values = {"preference": {"value": value}}
    if rationale:
        values["rationale"] = {"value": rationale}
    return values


def test_majority_keeps_the_side_most_annotators_chose():
    rows = _rows()
    ids = rows["id"].to_list()
    records = [
        _record(
            ids[0],
            [
                ("u1", "submitted", _vote("a", "clearer")),
                ("u2", "submitted", _vote("a")),
                ("u3", "submitted", _vote("b")),
            ],
        )
    ]
    answers, pending = parse_answers(records, users=USERS)
    kept, removed = resolve_answers(rows, answers, argilla={"dataset": "d"})
    assert (pending, kept.height, removed.height) == (0, 1, 0)
    row = kept.row(0, named=True)
    assert row["chosen"] == [{"role": "assistant", "content": "good 0"}] and row["id"] == ids[0]
    assert (row["margin"], row["split"]) == (1.5, "train")
    meta = json.loads(row["meta"])
    assert meta["line"] == 0
    assert meta["argilla"] == {
        "dataset": "d",
        "annotators": ["ann1", "ann2", "ann3"],
        "votes": {"chosen": 2, "rejected": 1},
        "agreement": 0.6667,
        "flipped": False,
        "rationales": [{"annotator": "ann1", "text": "clearer"}],
    }


def test_preferring_the_other_side_swaps_chosen_and_rejected():
    rows = _rows()
    ids = rows["id"].to_list()
    # A showed the row's rejected candidate and the annotator picked A
    answers, _ = parse_answers([_record(ids[1], [("u1", "submitted", _vote("a"))], a_is="rejected")], users=USERS)
    kept, _ = resolve_answers(rows, answers, argilla={})
    row = kept.row(0, named=True)
    assert (row["chosen"][0]["content"], row["rejected"][0]["content"]) == ("bad 1", "good 1")
    assert row["margin"] is None and row["id"] != ids[1] and row["split"] == "test"
    assert json.loads(row["meta"])["argilla"]["flipped"] is True


@pytest.mark.parametrize(
    ("responses", "reason"),
    [
        ([("u1", "submitted", _vote("tie"))], "tie"),
        ([("u1", "submitted", _vote("both_bad")), ("u2", "submitted", _vote("both_bad"))], "both_bad"),
        ([("u1", "submitted", _vote("a")), ("u2", "submitted", _vote("b"))], "no_majority"),
        ([("u1", "discarded", None)], "discarded"),  # values null: the SDK 2.8 crashes on these
    ],
)
def test_unresolved_answers_are_removed_with_their_reason(responses, reason):
    rows = _rows()
    answers, _ = parse_answers([_record(rows["id"][0], responses)], users=USERS)
    kept, removed = resolve_answers(rows, answers, argilla={})
    assert kept.height == 0
    assert removed["reason"].to_list() == [reason]
    assert removed["chosen"].to_list() == rows["chosen"][:1].to_list()  # removed rows stay as pushed


def test_ranking_answers_are_read_from_their_ranks_not_their_order():
    rows = _rows()
    ids = rows["id"].to_list()
    records = [
        _record(ids[0], [("u1", "submitted", _vote([{"value": "a", "rank": 2}, {"value": "b", "rank": 1}]))]),
        _record(ids[1], [("u1", "submitted", _vote([{"value": "b", "rank": 1}, {"value": "a", "rank": 1}]))]),
    ]
    answers, _ = parse_answers(records, users=USERS)
    kept, removed = resolve_answers(rows, answers, argilla={})
    assert kept["chosen"].to_list() == [[{"role": "assistant", "content": "bad 0"}]]  # b (rejected) ranked first
    assert removed["reason"].to_list() == ["tie"]


def test_drafts_and_unanswered_records_stay_pending():
    rows = _rows()
    ids = rows["id"].to_list()
    records = [
        _record(ids[0], [("u1", "draft", _vote("a"))]),
        _record(ids[1], []),
        _record(ids[2], [("u2", "submitted", _vote("b"))]),
    ]
    answers, pending = parse_answers(records, users={})
    assert pending == 2
    assert [(a.row_id, a.votes) for a in answers] == [(ids[2], [("u2", "rejected")])]  # unknown names stay ids
