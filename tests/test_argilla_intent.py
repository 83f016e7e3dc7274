"""Intent labeling against the session's real argilla-server: suggestions from a real BANKING77 head run,
annotators answering over REST as the UI does, majority vote on pull."""

from __future__ import annotations

import json

import httpx
import polars as pl
import pytest
from intent_fixtures import INTENTS, BankingHead, banking_head  # noqa: F401 - module fixture

from curate.argilla.client import connect
from curate.argilla.errors import ArgillaError
from curate.argilla.intent import pull_intent, push_intent
from curate.argilla.push import push_frame
from curate.loop.propose import propose_labels
from curate.records import SCHEMAS, build_frame
from curate.store import Store

rg = pytest.importorskip("argilla", reason="the argilla extra is not installed")


@pytest.fixture(scope="module")
def client(argilla_server):
    return connect(argilla_server["url"], argilla_server["api_key"])


def _annotator(client, name: str) -> httpx.Client:
    """A new annotator in workspace `argilla`, as an HTTP client with their own key."""
    user = rg.User(username=name, password=f"{name}-password", role="annotator", client=client).create()
    client.workspaces("argilla").add_user(user)
    key = client.http_client.get(f"/api/v1/users/{user.id}").json()["api_key"]  # the SDK hides it
    return httpx.Client(base_url=client.api_url, headers={"X-Argilla-Api-Key": key})


def _server_records(client, dataset: str) -> dict[str, dict]:
    """external id (row id) -> the server's record JSON with suggestions."""
    ds = client.datasets(dataset, workspace="argilla")
    params = {"include": ["suggestions"], "limit": 1000}
    reply = client.http_client.get(f"/api/v1/datasets/{ds.id}/records", params=params)
    return {r["external_id"]: r for r in reply.json()["items"]}


def _answer(annotator: httpx.Client, record: dict, label: str | None, status: str = "submitted") -> None:
    values = {} if label is None else {"label": {"value": label}}
    reply = annotator.post(f"/api/v1/records/{record['id']}/responses", json={"values": values, "status": status})
    assert reply.status_code == 201, reply.text


def _feedback_rows() -> pl.DataFrame:
    records = [
        {"prompt": [{"role": "user", "content": "My card has not arrived yet, it has been two weeks"}],
         "completion": [{"role": "assistant", "content": "Please wait."}], "feedback": '{"thumbs": "down"}'},
        {"prompt": [{"role": "user", "content": "why did my top up fail?"}],
         "completion": [{"role": "assistant", "content": "It did not fail."}], "feedback": '{"escalated": true}'},
    ]  # fmt: skip
    valid, _ = build_frame("feedback", records)
    return valid


def _suggested(banking_head: BankingHead, frame: pl.DataFrame) -> pl.DataFrame:
    return propose_labels(frame, head_run=banking_head.run_id, k=3, runs_root=banking_head.runs_root)


def test_push_sends_the_top_suggestion_with_its_score_and_is_idempotent(client, banking_head):
    rows = _suggested(banking_head, Store(banking_head.store).kept(banking_head.ref, split="test").head(6))
    first = push_intent(rows, client=client, dataset="intent-push", labels=INTENTS, ref=banking_head.ref)
    second = push_intent(rows, client=client, dataset="intent-push", labels=INTENTS, ref=banking_head.ref)

    assert (first.created, first.existing, first.dataset_created) == (6, 0, True)
    assert (second.created, second.existing, second.dataset_created) == (0, 6, False)
    ds = client.datasets("intent-push", workspace="argilla")
    assert ds.settings.questions["label"].labels == INTENTS
    records = _server_records(client, "intent-push")
    assert sorted(records) == sorted(rows["id"].to_list())
    for row in rows.iter_rows(named=True):
        record = records[row["id"]]
        assert record["fields"]["text"] == row["messages"][0]["content"]
        [suggestion] = record["suggestions"]
        assert suggestion["value"] == row["suggested_labels"][0]
        assert suggestion["score"] == pytest.approx(row["suggested_scores"][0])
        assert suggestion["agent"] == "curate:head"
        assert f"**{row['suggested_labels'][2]}**" in record["fields"]["guesses"]
        assert record["metadata"]["confidence"] == pytest.approx(row["suggested_scores"][0])


def test_pull_keeps_majority_labels_records_agreement_and_leaves_unanswered_records_pending(client, banking_head):
    test = Store(banking_head.store).kept(banking_head.ref, split="test").head(5)
    rows = pl.concat([_suggested(banking_head, test.drop("split")), _suggested(banking_head, _feedback_rows())],
                     how="diagonal_relaxed")  # fmt: skip
    push_intent(rows, client=client, dataset="intent-pull", labels=INTENTS, ref="loop:test/1")
    records = _server_records(client, "intent-pull")
    ann1, ann2, ann3 = (_annotator(client, f"intent-ann{i}") for i in (1, 2, 3))
    sft = [r for r in rows.iter_rows(named=True) if r.get("messages")]
    fb = [r for r in rows.iter_rows(named=True) if not r.get("messages")]
    top = {r["id"]: r["suggested_labels"][0] for r in rows.iter_rows(named=True)}
    other = {rid: next(label for label in INTENTS if label != t) for rid, t in top.items()}

    # sft[0]: 2 of 3 accept the suggestion; sft[1]: all pick another label; sft[2]: 1 vs 1 (no majority)
    # sft[3]: discarded; sft[4]: only a draft (pending); fb[0]: one accepts; fb[1]: nobody (pending)
    for who, label in ((ann1, top[sft[0]["id"]]), (ann2, top[sft[0]["id"]]), (ann3, other[sft[0]["id"]])):
        _answer(who, records[sft[0]["id"]], label)
    for who in (ann1, ann2):
        _answer(who, records[sft[1]["id"]], other[sft[1]["id"]])
    _answer(ann1, records[sft[2]["id"]], top[sft[2]["id"]])
    _answer(ann2, records[sft[2]["id"]], other[sft[2]["id"]])
    _answer(ann1, records[sft[3]["id"]], None, status="discarded")
    _answer(ann1, records[sft[4]["id"]], top[sft[4]["id"]], status="draft")
    _answer(ann3, records[fb[0]["id"]], top[fb[0]["id"]])

    pulled = pull_intent("intent-pull", client=client)

    assert (pulled.answered, pulled.pending) == (5, 2)
    assert pulled.labeled.schema == SCHEMAS["sft"] and pulled.labeled.height == 3
    by_pushed = {json.loads(r["meta"])["pushed_id"]: r for r in pulled.labeled.iter_rows(named=True)}
    first, second, from_feedback = by_pushed[sft[0]["id"]], by_pushed[sft[1]["id"]], by_pushed[fb[0]["id"]]
    assert first["label"] == top[sft[0]["id"]] and second["label"] == other[sft[1]["id"]]
    argilla = json.loads(first["meta"])["argilla"]
    assert argilla["annotators"] == ["intent-ann1", "intent-ann2", "intent-ann3"]
    assert argilla["votes"] == {top[sft[0]["id"]]: 2, other[sft[0]["id"]]: 1} and argilla["agreement"] == 0.6667
    assert (argilla["suggested"], argilla["accepted"], argilla["dataset"]) == (top[sft[0]["id"]], True, "intent-pull")
    assert json.loads(second["meta"])["argilla"]["accepted"] is False
    # the intent row's answer is its label: relabeling changes both (and so the content id)
    assert second["messages"] == [sft[1]["messages"][0], {"role": "assistant", "content": other[sft[1]["id"]]}]
    assert second["id"] != sft[1]["id"]
    assert from_feedback["messages"] == [*fb[0]["prompt"], {"role": "assistant", "content": top[fb[0]["id"]]}]

    removed = {r["id"]: r for r in pulled.removed.iter_rows(named=True)}
    assert {rid: r["reason"] for rid, r in removed.items()} == {sft[2]["id"]: "no_majority", sft[3]["id"]: "discarded"}
    assert removed[sft[2]["id"]]["label"] == sft[2]["label"] and removed[sft[2]["id"]]["messages"] == sft[2]["messages"]
    discarded = json.loads(removed[sft[3]["id"]]["detail"])
    assert discarded == {"agreement": 1.0, "discarded_by": ["intent-ann1"], "votes": {}}


def test_suggestions_outside_the_label_set_are_refused_before_anything_is_sent(client, banking_head):
    rows = _suggested(banking_head, _feedback_rows())
    with pytest.raises(ArgillaError, match=r"The suggestions name labels outside the label set: .*Add them to"):
        push_intent(rows, client=client, dataset="intent-refused", labels=["card_arrival", "pin_blocked"], ref="x")
    assert client.datasets("intent-refused", workspace="argilla") is None


def test_a_dataset_of_another_layout_or_label_set_is_refused(client, banking_head):
    rows = _feedback_rows()
    push_intent(rows, client=client, dataset="intent-small", labels=INTENTS[:2], ref="x")
    with pytest.raises(ArgillaError, match=r"asks for labels card_arrival, exchange_rate; these rows need pin_blocked"):
        push_intent(rows, client=client, dataset="intent-small", labels=[*INTENTS[:2], "pin_blocked"], ref="x")
    pairs, _ = build_frame("preference", [{"prompt": [{"role": "user", "content": "q"}],
                                           "chosen": [{"role": "assistant", "content": "a"}],
                                           "rejected": [{"role": "assistant", "content": "b"}]}])  # fmt: skip
    push_frame(pairs, client=client, ref="prefs@0", dataset="intent-prefs")
    with pytest.raises(ArgillaError, match=r"'intent-prefs' .* was not made by curate's intent push"):
        push_intent(rows, client=client, dataset="intent-prefs", labels=INTENTS, ref="x")
