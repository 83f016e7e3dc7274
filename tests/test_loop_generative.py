"""The loop's generative path on real parts: production failures -> the ``generate`` stage (tiny Llama)
-> preference pairs in the session's argilla-server -> a REST annotator -> ``label pull`` -> a DPO run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import httpx
import polars as pl
import pytest

from curate.argilla.client import connect
from curate.argilla.pull import pull
from curate.argilla.push import push_frame
from curate.generate import GeneratorConfig
from curate.loop.propose import propose_pairs
from curate.records import build_frame
from curate.store import Store
from curate.train.recipe import Recipe
from curate.train.runner import train

rg = pytest.importorskip("argilla", reason="the argilla extra is not installed")

QUESTIONS = ["where is my refund", "cancel my order", "reset my password", "track my package", "i need a new card",
             "change my address", "my card was charged twice", "how do I close my account"]  # fmt: skip


def _failures(shared_data: Path) -> pl.DataFrame:
    """Served answers (real Bitext replies) that users thumbed down or rated low."""
    csv = shared_data / "bitext_customer_support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv"
    answers = pl.read_csv(csv, n_rows=len(QUESTIONS), infer_schema=False)["response"].to_list()
    records = [
        {"prompt": [{"role": "user", "content": q}], "completion": [{"role": "assistant", "content": a[:200]}],
         "feedback": json.dumps({"thumbs": "down"} if i % 2 else {"rating": 1}), "model": "support-lora",
         "ts": f"2026-12-02T06:{i:02d}:00Z"}
        for i, (q, a) in enumerate(zip(QUESTIONS, answers, strict=True))
    ]  # fmt: skip
    valid, invalid = build_frame("feedback", records)
    assert invalid.height == 0
    return valid


def test_failures_become_generated_pairs_that_annotators_judge_and_dpo_trains_on(
    argilla_server, tiny_lm, shared_data, tmp_path
):
    failures = _failures(shared_data)
    sampling = {"do_sample": True, "temperature": 1.0, "seed": 0, "max_new_tokens": 12}
    proposed = propose_pairs(failures, generators=[GeneratorConfig(model=str(tiny_lm), sampling=sampling)])
    pairs = proposed.kept.with_columns(split=pl.lit("train"))
    assert pairs.height + proposed.removed.height == failures.height and pairs.height >= 6

    client = connect(argilla_server["url"], argilla_server["api_key"])
    pushed = push_frame(pairs, client=client, ref="loop:generative/1", dataset="loop-generative", rationale=False)
    assert pushed.created == pairs.height
    # the annotator prefers the production answer (the `reference` candidate) on every record but one
    ds = client.datasets("loop-generative", workspace="argilla")
    records = client.http_client.get(f"/api/v1/datasets/{ds.id}/records", params={"limit": 100}).json()["items"]
    by_id = {r["id"]: json.loads(r["metadata"]["curate_row"]) for r in records}
    answered = 0
    for record in records[:-1]:
        row = by_id[record["id"]]
        reference_is_chosen = json.loads(row["meta"])["generate"]["chosen_generator"] == "reference"
        production_side = "a" if (record["metadata"]["a_is"] == "chosen") == reference_is_chosen else "b"
        answer = {"values": {"preference": {"value": production_side}}, "status": "submitted"}
        reply = client.http_client.post(f"/api/v1/records/{record['id']}/responses", json=answer)
        assert reply.status_code == 201, reply.text
        answered += 1

    store = Store(tmp_path / "store")
    result = pull(store, "loop-generative", into="prefs-labeled", api_url=argilla_server["url"],
                  api_key=argilla_server["api_key"])  # fmt: skip
    assert (result.answered, result.pending, result.kept) == (answered, 1, answered)
    kept = store.kept(f"prefs-labeled@{result.version}")
    served = zip(failures["prompt"], failures["completion"], strict=True)
    production = {prompt[-1]["content"]: answer[0]["content"] for prompt, answer in served}
    for row in kept.iter_rows(named=True):
        assert row["chosen"][0]["content"] == production[row["prompt"][-1]["content"]]

    training = {"max_steps": 4, "batch_size": 4, "max_length": 128, "logging_steps": 1, "learning_rate": 5e-3,
                "eval_strategy": "no", "save_strategy": "no"}  # fmt: skip
    recipe = Recipe.model_validate({"model": str(tiny_lm), "method": "dpo", "adapter": "lora",
                                    "dataset": "prefs-labeled", "output_dir": str(tmp_path / "runs"),
                                    "training": training})  # fmt: skip
    run = train(recipe, store=store.root)
    assert run.manifest["dataset"]["ref"] == f"prefs-labeled@{result.version}" and run.metrics["global_step"] == 4
    assert all(math.isfinite(x) for x in run.metrics["train_loss_history"])
