"""The loop's generative path on real parts: production failures -> the ``generate`` stage (tiny Llama)
-> preference pairs in the session's argilla-server -> a REST annotator -> ``label pull`` -> a DPO run,
first chained by hand, then as ``curate loop run`` iterations (``run_iteration``)."""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path

import polars as pl
import pytest
import yaml
from helpers import write_jsonl

from curate.argilla.client import connect
from curate.argilla.errors import ArgillaError
from curate.argilla.pull import pull
from curate.argilla.push import push_frame
from curate.generate import GeneratorConfig
from curate.loop.iteration import loop_status, run_iteration
from curate.loop.propose import propose_pairs
from curate.records import build_frame
from curate.store import Store
from curate.train.recipe import Recipe, TrainingSettings
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


# -- `curate loop run` on a generative recipe: the steps above wired into run_iteration ------------------------

def test_an_answer_the_run_writes_itself_is_far_less_uncertain_than_a_random_answer(tiny_lm, tmp_path):
    from curate.generate import load_generator
    from curate.loop.answer_scores import answer_uncertainty
    from curate.pipeline import run_pipeline

    # a run that learned one reply (full weights, ~1 s): its probabilities mean something, unlike a random init's
    rows = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": "alpha alpha"}]} for q in QUESTIONS]
    write_jsonl(tmp_path / "alpha.jsonl", rows)
    (tmp_path / "alpha.yaml").write_text(yaml.safe_dump({"source": {"path": "alpha.jsonl"}, "stages": [], "output": "alpha"}))
    run_pipeline(tmp_path / "alpha.yaml", store_root=tmp_path / "store")
    training = {"max_steps": 40, "batch_size": 8, "max_length": 64, "learning_rate": 3e-3, "scheduler": "constant",
                "warmup_ratio": 0.0, "eval_strategy": "no", "save_strategy": "no"}  # fmt: skip
    recipe = Recipe.model_validate({"model": str(tiny_lm), "method": "sft", "adapter": "full", "dataset": "alpha",
                                    "output_dir": str(tmp_path / "runs"), "training": training})  # fmt: skip
    run = train(recipe, store=tmp_path / "store").path

    prompts = [[{"role": "user", "content": q}] for q in ["where is my refund", "is the shop open on sunday", "hi", "help"]]
    own = [answers[0] for answers in load_generator(GeneratorConfig(model=str(run))).generate(prompts)]  # greedy
    assert set(own) == {"alpha alpha"}
    rng = random.Random(0)
    words = "refund parcel invoice weather cancel password window orange delivery river".split()
    noise = [" ".join(rng.choice(words) for _ in range(6)) for _ in prompts]
    records = [{"prompt": p, "completion": [{"role": "assistant", "content": a}], "feedback": None, "model": "m", "ts": "t"}
               for p, a in zip(prompts * 2, own + noise, strict=True)]  # fmt: skip
    frame, _ = build_frame("feedback", records)
    unsure = answer_uncertainty(frame, run=run, device="cpu")
    assert unsure is not None and unsure.shape == (8,) and ((unsure >= 0) & (unsure <= 1)).all()
    assert unsure[:4].max() < 0.2 and unsure[4:].min() > 0.8, unsure  # 1 - exp(mean token log-prob)
    no_answer, _ = build_frame("feedback", [{**records[0], "completion": [{"role": "assistant", "content": ""}]}])
    assert answer_uncertainty(no_answer, run=run, device="cpu").tolist() == [1.0]  # nothing served to vouch for


def _loop_file(tmp_path: Path, train_store: Path, tiny_lm: Path, shared_data: Path, *, label_url: str | None = None) -> Path:
    """A DPO loop on a copy of dpo-demo@0 whose production model is the tiny Llama; failures as JSONL."""
    shutil.copytree(train_store, tmp_path / "store")
    failures = _failures(shared_data).to_dicts()
    rows = [{"prompt": r["prompt"], "completion": r["completion"], "feedback": json.loads(r["feedback"]),
             "model": r["model"], "ts": r["ts"]} for r in failures]  # fmt: skip
    rows[0]["feedback"] = {"correction": "Your refund was sent today; it reaches your card in 3 to 5 days."}
    write_jsonl(tmp_path / "feedback.jsonl", rows)
    training = {"max_steps": 2, "batch_size": 4, "max_length": 128, "learning_rate": 5e-3, "eval_strategy": "no",
                "save_strategy": "no", "logging_steps": 1}  # fmt: skip
    loop = {"name": "gen", "training": "dpo-demo", "model": str(tiny_lm), "budget": 6, "collect": {"files": {"path": "feedback.jsonl"}},
            "recipe": {"model": str(tiny_lm), "method": "dpo", "adapter": "lora", "training": training},
            "generate": {"n": 1}, "label": {"url": label_url} if label_url else {}, "gate": {"failures_holdout": 0.4}}  # fmt: skip
    (tmp_path / "loop.yaml").write_text(yaml.safe_dump(loop), encoding="utf-8")
    return tmp_path / "loop.yaml"


def _run(loop: Path, **kwargs):
    folder = loop.parent
    return run_iteration(loop, loops_root=folder / "loops", store_root=folder / "store", runs_root=folder / "runs", **kwargs)


def test_one_generative_iteration_from_failures_to_a_gated_dpo_run(argilla_server, tiny_lm, train_store, shared_data, tmp_path):
    loop = _loop_file(tmp_path, train_store, tiny_lm, shared_data)
    down = {"ARGILLA_API_URL": "http://127.0.0.1:9", "ARGILLA_API_KEY": argilla_server["api_key"]}
    with pytest.raises(ArgillaError):  # stopped between propose and push
        _run(loop, env=down)
    folder = tmp_path / "loops" / "gen" / "1"
    assert {p.stem for p in folder.glob("*.json")} == {"collect", "select", "propose"}
    proposed = json.loads((folder / "propose.json").read_text())["outputs"]
    assert proposed["corrections"] == 1 and proposed["generators"] == [str(tiny_lm)]  # no generators: the current run
    assert proposed["to_label"] + sum(proposed["not_proposed"].values()) == 5  # 6 selected, one of them corrected
    selection = pl.read_parquet(folder / "selection.parquet")
    assert selection["uncertainty"].is_between(0, 1).all()  # the tiny Llama's log-probs of the served answers
    stamp = (folder / "propose.json").stat().st_mtime_ns

    env = {"ARGILLA_API_URL": argilla_server["url"], "ARGILLA_API_KEY": argilla_server["api_key"]}
    assert _run(loop, env=env).waiting_at == "label"  # resumes at push: nothing generated again
    assert (folder / "propose.json").stat().st_mtime_ns == stamp
    client = connect(argilla_server["url"], argilla_server["api_key"])
    ds = client.datasets("gen-1", workspace="argilla")
    records = client.http_client.get(f"/api/v1/datasets/{ds.id}/records", params={"limit": 100}).json()["items"]
    assert len(records) == proposed["to_label"] >= 3
    (folder / "push.json").unlink()  # killed after uploading, before recording it: the next call pushes nothing twice
    assert _run(loop, env=env).waiting_at == "label"
    push = json.loads((folder / "push.json").read_text())["outputs"]
    assert (push["created"], push["existing"]) == (0, len(records))
    assert loop_status(loop, loops_root=tmp_path / "loops")["pending"].to_list() == [len(records)]

    for record in records:  # the annotator ranks the production answer (the `reference` candidate) first
        row = json.loads(record["metadata"]["curate_row"])
        reference_is_chosen = json.loads(row["meta"])["generate"]["chosen_generator"] == "reference"
        first = "a" if (record["metadata"]["a_is"] == "chosen") == reference_is_chosen else "b"
        ranking = [{"value": first, "rank": 1}, {"value": "b" if first == "a" else "a", "rank": 2}]
        reply = client.http_client.post(f"/api/v1/records/{record['id']}/responses",
                                        json={"values": {"preference": {"value": ranking}}, "status": "submitted"})  # fmt: skip
        assert reply.status_code == 201, reply.text
    done = _run(loop, env=env)
    assert done.waiting_at is None, done.message
    store = Store(tmp_path / "store")
    assert store.info("dpo-demo").lineage["parents"] == ["dpo-demo@0", "gen-labeled@0"]
    labeled = store.kept("gen-labeled@0")
    assert store.kind("gen-labeled@0") == "preference" and labeled.height == len(records) + 1
    served = {r["prompt"][-1]["content"]: r["completion"][0]["content"] for r in _failures(shared_data).to_dicts()}
    for row in labeled.iter_rows(named=True):
        question = row["prompt"][-1]["content"]
        if question == QUESTIONS[0]:  # the correction: chosen over the production answer, no annotator asked
            assert row["chosen"][0]["content"].startswith("Your refund was sent") and row["rejected"][0]["content"] == served[question]
        else:
            assert row["chosen"][0]["content"] == served[question]
    train_out = json.loads((folder / "train.json").read_text())["outputs"]
    manifest = json.loads((Path(train_out["path"]) / "manifest.json").read_text())
    assert manifest["method"] == "dpo" and manifest["dataset"]["ref"] == "dpo-demo@1" and train_out["resumed"] is None
    gate = json.loads((folder / "gate.json").read_text())["outputs"]
    assert gate["current"] == str(tiny_lm) and gate["new_run"] == train_out["run"]
    assert gate["failures"]["paired"] and gate["failures"]["n"] == 2 and gate["heldout"]["n"] == store.kept("dpo-demo@1", split="test").height
    assert "preference_accuracy" in gate["reasons"][0] and "for no change" in gate["reasons"][0]
    report = (folder / "report.md").read_text()
    assert "pairs to rank (production answer vs" in report and ("**Promoted**" in report) == gate["promoted"]
    status = loop_status(loop, loops_root=tmp_path / "loops").row(0, named=True)
    assert (status["next_step"], status["labeled"], status["run"]) == ("finished", len(records) + 1, gate["new_run"])


def test_the_train_step_resumes_the_run_a_killed_call_left_unfinished(tiny_lm, train_store, shared_data, tmp_path):
    from transformers import TrainerCallback

    from curate.loop import _steps
    from curate.loop.config import load_loop
    from curate.loop.iteration import LoopContext
    from curate.loop.state import IterationState, LoopState

    loop = _loop_file(tmp_path, train_store, tiny_lm, shared_data)
    config = load_loop(loop)
    training = {**config.recipe.training.model_dump(), "max_steps": 4, "save_strategy": "steps", "save_steps": 2}
    config = config.model_copy(update={"recipe": config.recipe.model_copy(update={"training": TrainingSettings(**training)})})
    runs = tmp_path / "runs"

    class Kill(TrainerCallback):
        def on_step_end(self, args, state, control, **kw) -> None:  # noqa: ANN001, ANN003
            if state.global_step == 3:
                raise KeyboardInterrupt("simulated kill after step 3")

    recipe = Recipe.model_validate({**config.recipe.model_dump(), "dataset": "dpo-demo@0", "output_dir": str(runs)})
    with pytest.raises(KeyboardInterrupt):  # what the loop's train step started before the process was killed
        train(recipe, store=tmp_path / "store", callbacks=[Kill()])
    (killed,) = [p.name for p in runs.iterdir()]
    ctx = LoopContext(config=config, base_dir=tmp_path, store=Store(tmp_path / "store"), runs_root=runs,
                      state=LoopState(tmp_path / "loops", "gen"))  # fmt: skip
    it = IterationState(tmp_path / "loops" / "gen" / "1", 1)
    it.save("merge", {"training": "dpo-demo@0", "labeled": None, "labeled_rows": 2})
    outputs, done = _steps.train(ctx, it)
    assert done and outputs["run"] == outputs["resumed"] == killed and [p.name for p in runs.iterdir()] == [killed]
    manifest = json.loads((runs / killed / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["metrics"]["global_step"] == 4


def test_an_sft_loop_trains_on_corrections_without_annotators_and_gates_on_token_f1(tiny_lm, train_store, shared_data, tmp_path):
    loop = _loop_file(tmp_path, train_store, tiny_lm, shared_data)
    spec = yaml.safe_load(loop.read_text())
    fixes = {"where is my refund": "It was sent today.", "cancel my order": "Done, order cancelled.",
             "reset my password": "Use the reset link we just emailed.", "track my package": "It arrives tomorrow."}  # fmt: skip
    rows = [{"prompt": [{"role": "user", "content": q}], "completion": "Sorry, I cannot help.", "feedback": {"correction": a},
             "ts": f"2026-12-02T07:0{i}:00Z"} for i, (q, a) in enumerate(fixes.items())]  # fmt: skip
    write_jsonl(tmp_path / "feedback.jsonl", rows)
    spec.update(training="support", budget=4, gate={"failures_holdout": 0.25},
                recipe={**spec["recipe"], "method": "sft"})  # fmt: skip
    loop.write_text(yaml.safe_dump(spec), encoding="utf-8")
    done = _run(loop)  # no record to rank: no Argilla needed
    assert done.waiting_at is None, done.message
    folder = done.folder
    assert json.loads((folder / "push.json").read_text())["outputs"]["dataset"] is None
    store = Store(tmp_path / "store")
    labeled = store.kept("gen-labeled@0")
    assert store.kind("gen-labeled@0") == "sft" and labeled.height == 4
    pairs = {m[0]["content"]: m[-1]["content"] for m in labeled["messages"].to_list()}
    assert pairs == fixes  # prompt + the user's correction
    assert store.info("support").lineage["parents"] == ["support@0", "gen-labeled@0"]
    gate = json.loads((folder / "gate.json").read_text())["outputs"]
    assert gate["heldout"]["current"] is not None and not gate["heldout"].get("paired")  # both runs answer: token F1 each
    assert "token_f1" in gate["reasons"][0] and gate["failures"]["n"] == 1
