"""The loop's propose step on real parts: a real ``head`` run (BANKING77, bundled MiniLM), the real
``generate`` stage with the tiny random Llama, feedback rows built as ``curate serve`` stores them."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from intent_fixtures import INTENTS, BankingHead, banking_head  # noqa: F401 - module fixture

from curate.errors import CurateError
from curate.loop.propose import corrections_to_sft, intent_texts, propose_labels, propose_pairs
from curate.records import SCHEMAS, build_frame
from curate.store import Store
from curate.train.head import HeadClassifier


def _feedback(rows: list[tuple[str, str, dict | None]], *, meta: list[dict] | None = None) -> pl.DataFrame:
    records = [
        {"prompt": [{"role": "system", "content": "You are a bank assistant."}, {"role": "user", "content": q}],
         "completion": [{"role": "assistant", "content": a}], "model": "support-lora", "ts": f"2026-12-02T06:0{i}:00Z",
         "feedback": None if f is None else json.dumps(f, sort_keys=True), "source": "serve",
         "meta": (meta or [{}] * len(rows))[i]}
        for i, (q, a, f) in enumerate(rows)
    ]  # fmt: skip
    valid, invalid = build_frame("feedback", records)
    assert invalid.height == 0
    return valid


def test_head_suggestions_are_its_top_k_labels_with_probabilities(banking_head: BankingHead):
    test = Store(banking_head.store).kept(banking_head.ref, split="test")
    out = propose_labels(test, head_run=banking_head.run_id, k=3, runs_root=banking_head.runs_root)

    assert out.columns == [*test.columns, "suggested_labels", "suggested_scores"]
    assert out.schema["suggested_labels"] == pl.List(pl.String)
    assert out.schema["suggested_scores"] == pl.List(pl.Float64)
    head = HeadClassifier.load(banking_head.runs_root / banking_head.run_id / "model")
    assert [labels[0] for labels in out["suggested_labels"]] == head.predict(intent_texts(test))
    for labels, scores in zip(out["suggested_labels"].to_list(), out["suggested_scores"].to_list(), strict=True):
        assert len(labels) == len(set(labels)) == 3 and set(labels) <= set(INTENTS)
        assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1 + 1e-6
    gold_in_top3 = sum(row["label"] in row["suggested_labels"] for row in out.iter_rows(named=True)) / out.height
    assert gold_in_top3 >= 0.8, gold_in_top3  # 5 easy intents: the head is right or nearly right


def test_feedback_prompts_get_suggestions_and_k_is_capped_by_the_labels_the_head_knows(banking_head: BankingHead):
    frame = _feedback([("my card still has not arrived", "It is on its way.", {"thumbs": "down"}),
                       ("my pin is blocked", "Try again.", None)])  # fmt: skip
    out = propose_labels(frame, head_run=banking_head.runs_root / banking_head.run_id, k=10)

    assert [len(labels) for labels in out["suggested_labels"]] == [5, 5]
    assert [labels[0] for labels in out["suggested_labels"]] == ["card_arrival", "pin_blocked"]
    assert out.drop("suggested_labels", "suggested_scores").equals(frame)


def test_no_rows_get_empty_suggestion_columns_without_loading_a_model(tmp_path: Path):
    empty = pl.DataFrame(schema=SCHEMAS["prompt"])
    out = propose_labels(empty, head_run="no-such-run", runs_root=tmp_path)
    assert out.height == 0 and out.columns[-2:] == ["suggested_labels", "suggested_scores"]


def test_a_run_that_is_not_a_head_is_refused(tiny_lm: Path):
    frame = _feedback([("hello", "hi", None)])
    with pytest.raises(CurateError, match=r"is not a `head` run \(adapter `head`: an encoder plus a label head\)"):
        propose_labels(frame, head_run=tiny_lm, k=2)


def test_corrected_answers_become_labeled_sft_rows_linked_to_their_feedback():
    frame = _feedback(
        [
            ("when does my card come", "No idea.", {"thumbs": "down", "correction": " It arrives within 5 days. "}),
            ("exchange rate?", "1.1", {"thumbs": "up"}),
            ("I lost my card", "Call us.", {"correction": "Freeze it in the app now.", "rating": 1}),
        ],
        meta=[{"label": "card_arrival"}, {}, {}],
    )
    sft = corrections_to_sft(frame)

    assert sft.schema == SCHEMAS["sft"] and sft.height == 2
    first, second = sft.iter_rows(named=True)
    assert first["messages"] == [*frame["prompt"][0], {"role": "assistant", "content": "It arrives within 5 days."}]
    assert (first["label"], second["label"]) == ("card_arrival", None)
    meta = json.loads(first["meta"])["feedback"]
    assert meta["id"] == frame["id"][0] and meta["kind"] == "correction" and meta["model"] == "support-lora"
    assert meta["completion"] == [{"role": "assistant", "content": "No idea."}]
    assert meta["fields"] == {"correction": " It arrives within 5 days. ", "thumbs": "down"}
    assert json.loads(second["meta"])["feedback"]["id"] == frame["id"][2]


def test_feedback_without_corrections_gives_no_rows():
    sft = corrections_to_sft(_feedback([("hi", "hello", {"thumbs": "down"}), ("yo", "hey", None)]))
    assert sft.height == 0 and sft.schema == SCHEMAS["sft"]


def test_generated_candidates_are_paired_with_the_production_answer(tiny_lm: Path):
    from curate.generate import GeneratorConfig

    frame = _feedback([("where is my refund", "Refunds take 5 days.", {"thumbs": "down"}),
                       ("cancel my order", "Done.", {"rating": 1})])  # fmt: skip
    sampling = {"do_sample": True, "temperature": 1.0, "seed": 0, "max_new_tokens": 8}
    generator = GeneratorConfig.model_validate({"model": str(tiny_lm), "sampling": sampling})
    result = propose_pairs(frame, generators=[generator], n=1)

    assert result.kind == "preference" and result.kept.height + result.removed.height == 2
    assert result.kept.height >= 1, result.removed
    for pair in result.kept.iter_rows(named=True):
        source = frame.filter(pl.col("id") == json.loads(pair["meta"])["generate"]["from_id"]).row(0, named=True)
        assert pair["prompt"] == source["prompt"]
        meta = json.loads(pair["meta"])
        candidates = {c["generator"]: c["text"] for c in meta["generate"]["candidates"]}
        assert candidates["reference"] == source["completion"][0]["content"]
        sides = {meta["generate"]["chosen_generator"], meta["generate"]["rejected_generator"]}
        assert sides == {"reference", str(tiny_lm)}
        assert meta["feedback"]["id"] == source["id"] and pair["margin"] is None  # unranked: for annotators


def test_a_correction_becomes_a_pair_over_the_production_answer_and_a_pair_becomes_an_sft_row():
    from curate.loop.propose import corrections_to_pairs, pairs_to_sft

    frame = _feedback([("where is my card", "No idea.", {"correction": "It ships tomorrow."}),
                       ("hello", "Hi!", {"thumbs": "up"})])  # fmt: skip
    pairs = corrections_to_pairs(frame)
    assert pairs.columns == list(SCHEMAS["preference"]) and pairs.height == 1
    row = pairs.row(0, named=True)
    assert [m["content"] for m in row["prompt"]] == ["You are a bank assistant.", "where is my card"]
    assert (row["chosen"][0]["content"], row["rejected"][0]["content"]) == ("It ships tomorrow.", "No idea.")
    assert json.loads(row["meta"])["feedback"]["id"] == frame["id"][0]
    sft = pairs_to_sft(pairs)
    assert sft.columns == list(SCHEMAS["sft"])
    assert [m["content"] for m in sft["messages"][0]] == ["You are a bank assistant.", "where is my card", "It ships tomorrow."]
