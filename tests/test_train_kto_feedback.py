"""KTO on unpaired production feedback: a real ``feedback`` store version, a few real TRL KTO steps.

Completions are real Bitext answers (../shared/data) with the feedback ``curate serve`` stores
(JSON of thumbs / rating / escalated / correction) or the ``kto`` reader's plain ``up`` / ``down``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import polars as pl
import pytest
import torch

from curate.errors import ConfigError
from curate.feedback import Verdict, correction, verdict
from curate.records import build_frame
from curate.stats import StageStats
from curate.store import Store
from curate.train.export import load_trained
from curate.train.recipe import Recipe
from curate.train.runner import train

# (feedback, split): 6 desirable, 7 undesirable, 5 without a usable signal
FEEDBACK = [
    ('{"thumbs": "up"}', "train"),
    ('{"thumbs": "up"}', "train"),
    ("up", "train"),  # the kto reader's form
    ('{"rating": 5}', "train"),
    ('{"rating": 4, "thumbs": "up"}', "train"),
    ('{"thumbs": "down"}', "train"),
    ('{"thumbs": "down"}', "train"),
    ("down", "train"),
    ('{"rating": 1}', "train"),
    ('{"escalated": true}', "train"),
    ('{"correction": "Please call us."}', "train"),
    ('{"rating": 3}', "train"),  # neutral_rating
    (None, "train"),  # no_feedback
    ('{"feedback_ts": "2026-12-02T06:00:00Z"}', "train"),  # no_signal
    ('{"thumbs": "up", "rating": 1}', "train"),  # conflicting_feedback
    ('{"thumbs": "up"}', "validation"),
    ('{"thumbs": "down"}', "validation"),
    (None, "validation"),  # no_feedback
]


def _commit_feedback(store: Store, name: str, shared_data: Path, feedback: list[tuple[str | None, str]]) -> str:
    csv = shared_data / "bitext_customer_support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv"
    bitext = pl.read_csv(csv, n_rows=len(feedback), infer_schema=False)
    records = [
        {"prompt": [{"role": "user", "content": q}], "completion": [{"role": "assistant", "content": a[:300]}],
         "feedback": f, "model": "support-lora", "ts": f"2026-12-02T06:{i:02d}:00Z"}
        for i, (q, a, (f, _)) in enumerate(zip(bitext["instruction"], bitext["response"], feedback, strict=True))
    ]  # fmt: skip
    valid, invalid = build_frame("feedback", records)
    assert invalid.height == 0
    kept = valid.with_columns(split=pl.Series([s for _, s in feedback]))
    removed = kept.clear().drop("split").with_columns(
        removed_by=pl.lit(None, pl.String), reason=pl.lit(None, pl.String), detail=pl.lit(None, pl.String)
    )
    n = len(records)
    stats = StageStats(stage="convert", name="convert", rows_in=n, rows_added=0, rows_kept=n, rows_removed=0)
    version = store.commit(name, kind="feedback", kept=kept, removed=removed, stages=[stats], lineage={})
    return f"{name}@{version}"


def _recipe(tiny_lm: Path, tmp_path: Path, dataset: str) -> Recipe:
    training = {"max_steps": 4, "batch_size": 4, "max_length": 128, "logging_steps": 1, "learning_rate": 5e-3,
                "eval_strategy": "no", "save_strategy": "no"}  # fmt: skip
    return Recipe.model_validate({"model": str(tiny_lm), "method": "kto", "adapter": "lora", "dataset": dataset,
                                  "output_dir": str(tmp_path / "runs"), "training": training})  # fmt: skip


@pytest.mark.parametrize(
    ("feedback", "expected"),
    [
        ('{"thumbs": "up"}', Verdict(True, None, ("thumbs_up",))),
        ("down", Verdict(False, None, ("thumbs_down",))),
        ('{"rating": 4}', Verdict(True, None, ("rating_4",))),
        ('{"rating": "2"}', Verdict(False, None, ("rating_2",))),
        ('{"rating": 3}', Verdict(None, "neutral_rating")),
        ('{"escalated": true, "thumbs": "down"}', Verdict(False, None, ("thumbs_down", "escalated"))),
        ('{"escalated": false}', Verdict(None, "no_signal")),
        ('{"correction": "It ships tomorrow."}', Verdict(False, None, ("correction",))),
        ('{"correction": "  "}', Verdict(None, "no_signal")),
        ('{"thumbs": "up", "escalated": true}', Verdict(None, "conflicting_feedback", ("thumbs_up", "escalated"))),
        (None, Verdict(None, "no_feedback")),
        ("great answer", Verdict(None, "no_signal")),
    ],
)
def test_feedback_verdict_reads_thumbs_rating_escalation_and_correction(feedback, expected):
    assert verdict(feedback) == expected


def test_correction_is_read_from_the_feedback_json():
    assert correction('{"thumbs": "down", "correction": " It ships tomorrow. "}') == "It ships tomorrow."
    assert correction('{"thumbs": "down"}') is None and correction("down") is None and correction(None) is None


def test_kto_trains_on_feedback_rows_and_counts_the_rows_it_skipped(tiny_lm, shared_data, tmp_path):
    store = Store(tmp_path / "store")
    ref = _commit_feedback(store, "prod", shared_data, FEEDBACK)

    result = train(_recipe(tiny_lm, tmp_path, ref), store=store.root)

    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["dataset"]["kind"] == "feedback" and manifest["dataset"]["rows"] == {"train": 11, "validation": 2}
    assert manifest["feedback"] == {
        "rows": 18,
        "used": 13,
        "desirable": 6,
        "undesirable": 7,
        "skipped": 5,
        "skipped_by_reason": {"conflicting_feedback": 1, "neutral_rating": 1, "no_feedback": 2, "no_signal": 1},
    }
    m = result.metrics
    assert m["global_step"] == 4 and all(math.isfinite(x) for x in m["train_loss_history"])
    assert math.isfinite(m["train_sample_loss_before"]) and math.isfinite(m["train_sample_loss_after"])
    # the adapter moved the model: its logits differ from the base's
    from transformers import AutoModelForCausalLM

    trained, tokenizer = load_trained(result.path)
    base = AutoModelForCausalLM.from_pretrained(tiny_lm, dtype=torch.float32).eval()
    question = [{"role": "user", "content": "where is my refund"}]
    ids = tokenizer.apply_chat_template(question, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        moved = (trained.eval()(**ids).logits - base(**ids).logits).abs().max().item()
    assert moved > 1e-4


def test_kto_on_feedback_without_any_signal_fails_before_loading_a_model(tiny_lm, shared_data, tmp_path):
    store = Store(tmp_path / "store")
    ref = _commit_feedback(store, "silent", shared_data, [(None, "train"), ('{"rating": 3}', "train")])
    with pytest.raises(
        ConfigError,
        match=r"Dataset silent@0 has no train rows with usable feedback \(1 neutral_rating, 1 no_feedback\); KTO needs",
    ):
        train(_recipe(tiny_lm, tmp_path, ref), store=store.root)
    assert not (tmp_path / "runs").exists()


def test_methods_other_than_kto_still_refuse_feedback_rows(tiny_lm, shared_data, tmp_path):
    store = Store(tmp_path / "store")
    ref = _commit_feedback(store, "prod", shared_data, FEEDBACK[:4])
    recipe = _recipe(tiny_lm, tmp_path, ref).model_copy(update={"method": "dpo"})
    with pytest.raises(ConfigError, match=r"Dataset prod@0 holds feedback records, but method 'dpo' trains on"):
        train(recipe, store=store.root)
