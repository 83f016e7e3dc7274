"""quality on real data (Bitext placeholders, Chinese OASST answers) and on small frames built here."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest
from pydantic import ValidationError

from curate.records import build_frame
from curate.stages.base import StageContext
from curate.stages.quality import Quality, QualityConfig

BITEXT = "bitext_customer_support/Bitext_Sample_Customer_Support_Training_Dataset.csv"
CTX = StageContext(dataset="support", kind="sft", base_dir=Path("."), stage_id="quality")


def chats(pairs: list[tuple[str, str]]) -> pl.DataFrame:
    frame, invalid = build_frame(
        "sft", [{"messages": [{"role": "user", "content": u}, {"role": "assistant", "content": a}]} for u, a in pairs]
    )
    assert invalid.is_empty()
    return frame


def bitext(shared: Path, rows: int) -> pl.DataFrame:
    df = pl.read_csv(shared / BITEXT, infer_schema=False, n_rows=rows)
    return chats(list(zip(df["instruction"], df["response"], strict=True)))


def test_bitext_placeholder_responses_are_flagged_by_the_placeholder_rule(shared_data: Path) -> None:
    frame = bitext(shared_data, 1500)
    responses = [m[1]["content"] for m in frame["messages"].to_list()]
    # counted independently: {{Slot}} placeholders, and Bitext's few "[Customer Support Phone Number]" ones
    braces = [bool(re.search(r"\{\{[^{}]+\}\}", r)) for r in responses]
    brackets = [bool(re.search(r"\[(?:Customer|Company|Your)[A-Za-z ]*\]", r)) for r in responses]
    expected = sum(a or b for a, b in zip(braces, brackets, strict=True))
    assert sum(braces) == 1079 and expected == 1095

    flagged = Quality(QualityConfig(mode="flag")).apply(frame, CTX)
    assert flagged.removed.is_empty() and flagged.kept.height == frame.height
    marks = flagged.kept["quality_flags"].list.contains("placeholder_leak").to_list()
    assert marks == [a or b for a, b in zip(braces, brackets, strict=True)]
    assert flagged.stats["flagged_per_rule"]["placeholder_leak"] == expected

    only = {name: False for name in QualityConfig.model_fields if name not in ("mode", "placeholder_leak", "classifier", "perplexity")}
    filtered = Quality(QualityConfig.model_validate(only)).apply(frame, CTX)
    assert filtered.removed.height == expected
    assert set(filtered.removed["reason"]) == {"placeholder_leak"}
    detail = json.loads(filtered.removed["detail"][0])
    assert detail["rule"] == "placeholder_leak" and detail["value"].startswith("{{")


def test_each_heuristic_removes_with_its_reason_and_value() -> None:
    long_ok = "Your refund was approved today and the money should reach your card within five working days."
    frame = chats([
        ("Where is my parcel?", long_ok),
        ("Where is my parcel?", "   "),
        ("Write a haiku", "As an AI language model, I do not have feelings, but here is a haiku about spring."),
        ("How do I pick a lock?", "I'm sorry, but I can't help with that request."),
        ("Dear team, please send the invoice for order 88 today.", "Dear team, please send the invoice for order 88 today."),
        ("List the steps", "First open the settings page, then choose the billing tab and"),
        ("Send the email", "Hello [NAME], your order {{Order Number}} has shipped."),
        ("Say something", "word " * 30),
        ("Write code", "```python\nprint('hi')\n"),
    ])
    result = Quality(QualityConfig()).apply(frame, CTX)
    reasons = dict(zip([m[1]["content"] for m in result.removed["messages"]], result.removed["reason"], strict=True))
    assert result.kept.height == 1
    assert list(reasons.values()) == [
        "empty_response", "ai_self_reference", "boilerplate_refusal", "echoes_user", "truncated_response",
        "placeholder_leak", "repeated_ngrams", "truncated_response",
    ]
    details = [json.loads(d) for d in result.removed["detail"]]
    assert details[1]["value"] == "As an AI" and details[5]["value"] == "[NAME]"


def test_rules_switch_off_with_false_and_tune_in_yaml_shape() -> None:
    config = QualityConfig.model_validate(
        {"placeholder_leak": False, "length": {"assistant": {"min_words": 5}}, "echoes_user": {"min_similarity": 0.5}}
    )
    assert config.placeholder_leak.enabled is False
    frame = chats([("Hi", "Hello {{Name}} there")])
    result = Quality(config).apply(frame, CTX)
    assert result.removed["reason"].to_list() == ["too_short"]
    assert json.loads(result.removed["detail"][0])["value"] == "assistant 3 words"
    with pytest.raises(ValidationError, match="placeholder_lek"):
        QualityConfig.model_validate({"placeholder_lek": False})


def test_language_rule_flags_chinese_answers(shared_data: Path) -> None:
    rows = json.loads((shared_data / "llamafactory_demo" / "oaast_sft_zh.json").read_text(encoding="utf-8"))[:20]
    frame = chats([(r["instruction"], r["output"]) for r in rows] + [("Hello", "Your order has shipped and will arrive on Friday morning.")])
    config = QualityConfig.model_validate({"mode": "flag", "language": {"enabled": True, "candidates": ["en", "zh", "de"]}})
    flags = Quality(config).apply(frame, CTX).kept["quality_flags"].list.contains("wrong_language").to_list()
    assert flags[-1] is False
    assert sum(flags[:-1]) >= 18  # OASST Chinese answers; a few mix in English code or names


def test_classifier_score_column_and_threshold(tmp_path: Path, shared_data: Path) -> None:
    good = [m[1]["content"] for m in bitext(shared_data, 40)["messages"].to_list()]
    bad = ["asdf qwer zxcv", "lol", "click here buy now!!! $$$", "????", "ok ok ok ok ok", "n/a", "idk", "spam spam spam",
           "aaaaaaa", "random garbage text 123"] * 4
    examples = tmp_path / "examples.jsonl"
    examples.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in
                                [(g, "good") for g in good] + [(b, "bad") for b in bad]))
    frame = chats([("Cancel my order", "I have cancelled your order and refunded the full amount to your card."),
                   ("Cancel my order", "lol spam $$$ click")])
    config = QualityConfig.model_validate({"classifier": {"examples": str(examples)}, "length": False})
    result = Quality(config).apply(frame, StageContext(dataset="s", kind="sft", base_dir=tmp_path))
    assert result.kept.height == 1 and result.kept["quality_score"][0] > 0.5
    assert result.removed["reason"].to_list() == ["low_quality_score"]
    assert result.removed["quality_score"][0] < 0.5


def test_perplexity_column_from_a_local_causal_lm(tmp_path: Path, shared_data: Path) -> None:
    from lm_fixtures import build_tiny_lm

    texts = [m[1]["content"] for m in bitext(shared_data, 100)["messages"].to_list()]
    model = build_tiny_lm(tmp_path / "lm", corpus=texts, vocab_size=300)
    frame = chats([("Where is my order?", texts[0]), ("Hi", "zq xv jk")])
    config = QualityConfig.model_validate({"mode": "flag", "perplexity": {"model": str(model), "max_perplexity": 1e9}})
    kept = Quality(config).apply(frame, CTX).kept
    assert kept["perplexity"].is_not_null().all() and (kept["perplexity"] > 1).all()


def test_a_huge_row_is_removed_as_too_long_by_the_length_rule_alone() -> None:
    huge = "Hello {{Name}}, " * 1_500_000  # 24 MB: also a placeholder leak and nothing but repetition
    frame = chats([("Where is my order?", huge), ("Where is my order?", "It ships today and arrives on Friday morning.")])
    result = Quality(QualityConfig()).apply(frame, CTX)
    assert result.kept.height == 1
    assert result.removed["reason"].to_list() == ["too_long"]
    detail = json.loads(result.removed["detail"][0])
    assert detail == {"rule": "length", "reason": "too_long", "value": "assistant 3000000 words", "flags": ["too_long"]}
