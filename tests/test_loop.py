"""`curate loop`: collect -> select -> propose -> push -> label -> merge -> train -> gate on BANKING77 intents,
with a real MiniLM head run, the real embeddings, the session's argilla-server and a REST annotator."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
import yaml
from helpers import write_jsonl
from intent_fixtures import INTENTS, BankingHead, banking_head  # noqa: F401 - module fixture

from curate.embeddings import embed
from curate.errors import ConfigError
from curate.evaluate.results import EvalResult, MetricResult
from curate.loop.config import SelectConfig, load_loop
from curate.loop.gate import decide
from curate.loop.iteration import loop_status, run_iteration
from curate.loop.propose import intent_texts
from curate.loop.select import REASONS, reason_counts, select_rows
from curate.loop.strategies import uncertainty
from curate.records import build_frame
from curate.store import Store

RECIPE = {"model": "all-MiniLM-L6-v2", "method": "sft", "adapter": "head",
          "training": {"epochs": 30, "batch_size": 32, "learning_rate": 1e-2}}  # fmt: skip


def _production(shared_data: Path, banking_head: BankingHead) -> tuple[list[dict], dict[str, str]]:
    """40 BANKING77 rows the head never saw (12 thumbs down, one corrected), 2 copies of training rows, 1 repeat."""
    banking = pl.read_csv(shared_data / "banking77" / "train.csv")
    unseen = banking.filter(pl.col("category").is_in(INTENTS) & (pl.int_range(pl.len()).over("category").is_between(30, 37)))
    gold = dict(unseen.select("text", "category").iter_rows())
    rows = []
    for i, (text, category) in enumerate(unseen.select("text", "category").iter_rows()):
        feedback = {"thumbs": "down"} if i % 3 == 0 else {"rating": 5} if i % 3 == 1 else None
        rows.append({"prompt": [{"role": "user", "content": text}], "completion": "Thanks, we are on it.",
                     "feedback": feedback, "model": "intent-head", "ts": f"2026-12-02T06:{i:02d}:00Z"})  # fmt: skip
    rows[3]["feedback"] = {"correction": gold[rows[3]["prompt"][0]["content"]]}
    training = Store(banking_head.store).kept(banking_head.ref, split="train")
    for text in intent_texts(training)[:2]:
        rows.append({"prompt": [{"role": "user", "content": text}], "completion": "ok", "feedback": None, "ts": "2026-12-02T07:00:00Z"})
    rows.append({**rows[0], "feedback": {"thumbs": "down", "rating": 1}})  # the same question again
    return rows, gold


def _loop_folder(tmp_path: Path, banking_head: BankingHead, rows: list[dict], **overrides) -> Path:
    """A copy of the store and runs, the production rows as JSONL and a loop file beside them."""
    shutil.copytree(banking_head.store, tmp_path / "store")
    shutil.copytree(banking_head.runs_root, tmp_path / "runs")
    write_jsonl(tmp_path / "feedback" / "day1.jsonl", rows)
    loop = {"name": "banking", "training": "intents", "model": banking_head.run_id, "budget": 10,
            "collect": {"files": {"path": "feedback/*.jsonl"}}, "recipe": RECIPE, **overrides}  # fmt: skip
    (tmp_path / "loop.yaml").write_text(yaml.safe_dump(loop), encoding="utf-8")
    return tmp_path / "loop.yaml"


def _run(loop: Path, **kwargs):
    folder = loop.parent
    return run_iteration(loop, loops_root=folder / "loops", store_root=folder / "store", runs_root=folder / "runs", **kwargs)


def test_select_accounts_for_every_row_with_a_reason_failures_first_within_budget(shared_data, banking_head):
    rows, _ = _production(shared_data, banking_head)
    frame, invalid = build_frame("feedback", [{**r, "feedback": json.dumps(r["feedback"]) if r["feedback"] else None,
                                               "completion": [{"role": "assistant", "content": r["completion"]}]}
                                              for r in rows])  # fmt: skip
    assert invalid.height == 0
    store = Store(banking_head.store)
    from curate.loop._steps import _head, _probs
    from curate.loop.iteration import LoopContext
    from curate.loop.state import LoopState

    ctx = LoopContext(config=None, base_dir=Path("."), store=store, runs_root=banking_head.runs_root, state=LoopState(".", "x"))  # type: ignore[arg-type]
    texts = intent_texts(frame)
    selection = select_rows(
        frame, texts=texts, training_texts=intent_texts(store.kept(banking_head.ref, split="train")), budget=10,
        config=SelectConfig(), embed=embed, uncertainty=uncertainty(_probs(_head(ctx, banking_head.run_id), texts), "margin"),
    )  # fmt: skip
    assert selection.height == frame.height and selection["id"].to_list() == frame["id"].to_list()
    assert selection.filter(pl.col("selected"))["reason"].null_count() == selection["selected"].sum()
    assert set(selection.filter(~pl.col("selected"))["reason"]) <= set(REASONS)
    counts = reason_counts(selection)
    assert counts["selected"] == 10 and sum(counts.values()) == frame.height
    reasons = selection["reason"].to_list()
    assert reasons[-1] == "duplicate" and reasons[-3:-1] == ["duplicate_of_training"] * 2
    assert counts["duplicate"] == 2  # the repeat, and BANKING77's own "top up" / "top-up" pair
    failures = selection.filter("failure")
    assert failures.height == 15  # 13 thumbs down (incl. the repeat), the correction, ... all explicit
    assert selection.filter("selected")["failure"].all()  # more failures than budget: only failures picked
    assert failures.filter(~pl.col("selected"))["reason"].is_in(["over_budget", "duplicate"]).all()


def test_a_loop_file_with_both_collect_sources_is_refused_with_its_line(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text("name: x\ntraining: t\nbudget: 5\nrecipe: {model: m, adapter: head}\ncollect:\n  files: {path: a.jsonl}\n  dataset: prod\n")
    with pytest.raises(ConfigError, match=r"line 6, collect: set exactly one of `files`"):
        load_loop(path)


LOOP_HEAD = "name: x\ntraining: t\nbudget: 5\nmodel: m\ncollect: {dataset: prod}\n"


def test_a_generative_recipe_without_a_generate_block_is_refused_at_load(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text(LOOP_HEAD + "recipe: {model: m, method: dpo, adapter: lora}\n")
    with pytest.raises(ConfigError, match=r"generate: a generative loop \(method dpo, adapter lora\) needs a `generate:` block"):
        load_loop(path)
    path.write_text(LOOP_HEAD + "recipe: {model: m, method: reward, adapter: lora}\ngenerate: {}\n")
    with pytest.raises(ConfigError, match=r"line 6, recipe: the loop trains a `head` \(intent\) or method sft, dpo or kto"):
        load_loop(path)
    path.write_text(LOOP_HEAD + "recipe: {model: m, method: dpo, adapter: lora}\ngenerate: {}\ngate: {metric: label_accuracy}\n")
    with pytest.raises(ConfigError, match=r"line 8, gate: metric 'label_accuracy' cannot gate a dpo loop; choose from "
                       r"preference_accuracy, dpo_margin"):  # fmt: skip
        load_loop(path)
    path.write_text(LOOP_HEAD.replace("model: m\n", "") + "recipe: {model: m, method: kto, adapter: lora}\ngenerate: {n: 1}\n")
    with pytest.raises(ConfigError, match=r"`generate.generators` is empty, so the current run answers, but the loop names no `model`"):
        load_loop(path)
    path.write_text(LOOP_HEAD + "recipe: {model: m, method: kto, adapter: lora}\ngenerate: {n: 1}\n")
    loop = load_loop(path)
    assert (loop.generative, loop.labeled_kind, loop.gate_metric) == (True, "preference", "preference_accuracy")
    path.write_text(LOOP_HEAD + "recipe: {model: m, adapter: head}\ngenerate: {}\n")
    with pytest.raises(ConfigError, match=r"generate: `generate:` is for generative loops"):
        load_loop(path)
    path.write_text(LOOP_HEAD + "recipe: {model: m, method: dpo, adapter: lora}\ngenerate: {}\nlabel: {k: 3}\n")
    with pytest.raises(ConfigError, match=r"line 8, label: `k` does not apply to a generative loop \(method dpo\): remove it"):
        load_loop(path)  # an intent-only field is refused, not ignored
    example = load_loop(Path(__file__).resolve().parent.parent / "pipelines" / "loop-generative.yaml")
    assert (example.generative, example.labeled_kind, example.gate_metric) == (True, "sft", "token_f1")


def test_a_dpo_loop_on_an_sft_training_dataset_fails_before_collecting_naming_both(tmp_path, train_store):
    shutil.copytree(train_store, tmp_path / "store")
    write_jsonl(tmp_path / "feedback.jsonl", [{"prompt": [{"role": "user", "content": "hi"}], "completion": "hello"}])
    path = tmp_path / "loop.yaml"
    path.write_text(LOOP_HEAD.replace("training: t", "training: support").replace("{dataset: prod}", "{files: {path: feedback.jsonl}}")
                    + "recipe: {model: m, method: dpo, adapter: lora}\ngenerate: {}\n")  # fmt: skip
    with pytest.raises(ConfigError, match=r"Loop 'x': the recipe trains method dpo on preference rows, but the training "
                       r"dataset support@0 holds sft rows. Point `training` at a preference dataset"):  # fmt: skip
        _run(path)
    assert not (tmp_path / "loops").exists() and Store(tmp_path / "store").latest_version("x-feedback") is None


def _eval(dataset: str, new: float, current: float, low: float, high: float, n: int = 100) -> EvalResult:
    metric = MetricResult("label_accuracy", new, new - 0.05, new + 0.05, n, baseline=current, baseline_low=low,
                          baseline_high=high, diff=new - current)  # fmt: skip
    return EvalResult(model="new", dataset=dataset, split="test", kind="sft", n_examples=n, metrics=[metric])


def test_gate_promotes_only_when_failures_improve_and_the_held_out_split_holds():
    holds, regresses = _eval("t@1", 0.80, 0.82, 0.76, 0.88), _eval("t@1", 0.70, 0.82, 0.76, 0.88)
    better, same = _eval("f@0", 0.60, 0.20, 0.0, 0.5, n=10), _eval("f@0", 0.20, 0.20, 0.0, 0.5, n=10)
    assert decide(holds, better, metric="label_accuracy").promoted
    refused = decide(regresses, better, metric="label_accuracy")
    assert not refused.promoted and "regresses below it" in refused.reasons[1]
    assert not decide(holds, same, metric="label_accuracy").promoted
    assert decide(None, None, metric="label_accuracy").promoted  # no current run yet


def test_gate_refuses_a_real_run_that_is_worse_on_the_held_out_split(tmp_path, banking_head):
    from curate.evaluate.config import EvaluateConfig
    from curate.evaluate.run import eval_run
    from curate.train.recipe import Recipe
    from curate.train.runner import train

    weak = Recipe.model_validate({**RECIPE, "dataset": banking_head.ref, "output_dir": str(tmp_path / "runs"),
                                  "training": {"epochs": 1, "batch_size": 32, "learning_rate": 1e-4}})  # fmt: skip
    run = train(weak, store=banking_head.store)
    config = EvaluateConfig(split="test", metrics=["label_accuracy"], baseline=str(banking_head.runs_root / banking_head.run_id))
    heldout = eval_run(run.path, config=config, store_root=banking_head.store, runs_root=tmp_path / "runs", device="cpu", save=False)
    m = heldout.metric("label_accuracy")
    assert m.value < m.baseline_low  # the weak run is clearly worse
    decision = decide(heldout, heldout, metric="label_accuracy")
    assert not decision.promoted and "regresses below it" in decision.reasons[1]


def test_an_iteration_stopped_by_an_unreachable_argilla_resumes_without_collecting_or_selecting_again(
    tmp_path, shared_data, banking_head
):
    rows, _ = _production(shared_data, banking_head)
    loop = _loop_folder(tmp_path, banking_head, rows, label={"url": "http://127.0.0.1:9"})
    from curate.argilla.errors import ArgillaError

    env = {"ARGILLA_API_KEY": "k", "ARGILLA_API_URL": "http://127.0.0.1:9"}
    with pytest.raises(ArgillaError, match="No Argilla server answers at http://127.0.0.1:9"):
        _run(loop, env=env)
    folder = tmp_path / "loops" / "banking" / "1"
    done = {p.stem for p in folder.glob("*.json")}
    assert done == {"collect", "select", "propose"}
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    with pytest.raises(ArgillaError):
        _run(loop, env=env)
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == stamps  # nothing redone
    assert [v.version for v in Store(tmp_path / "store").history("banking-feedback")] == [0]
    status = loop_status(loop, loops_root=tmp_path / "loops")
    assert status.select("iteration", "next_step", "collected", "selected").row(0) == (1, "push", 43, 10)


def test_one_iteration_end_to_end_with_argilla_annotators_answering_from_gold_labels(
    tmp_path, shared_data, banking_head, argilla_server
):
    import httpx

    from curate.argilla.client import connect

    rows, gold = _production(shared_data, banking_head)
    loop = _loop_folder(tmp_path, banking_head, rows)
    from curate.argilla.errors import ArgillaError

    down = {"ARGILLA_API_URL": "http://127.0.0.1:9", "ARGILLA_API_KEY": argilla_server["api_key"]}
    with pytest.raises(ArgillaError):  # stopped between propose and push
        _run(loop, env=down)
    env = {"ARGILLA_API_URL": argilla_server["url"], "ARGILLA_API_KEY": argilla_server["api_key"]}
    first = _run(loop, env=env)  # resumes at push
    assert first.waiting_at == "label"
    client = connect(argilla_server["url"], argilla_server["api_key"])
    ds = client.datasets("banking-1", workspace="argilla")
    records = client.http_client.get(f"/api/v1/datasets/{ds.id}/records", params={"limit": 1000}).json()["items"]
    assert len(records) == 9  # 10 selected, one of them a correction naming a label: labeled without annotators
    push_stamp = (tmp_path / "loops" / "banking" / "1" / "push.json").stat().st_mtime_ns
    assert _run(loop, env=env).waiting_at == "label"  # nobody answered yet: pulls again, pushes nothing
    assert (tmp_path / "loops" / "banking" / "1" / "push.json").stat().st_mtime_ns == push_stamp
    assert len(client.http_client.get(f"/api/v1/datasets/{ds.id}/records", params={"limit": 1000}).json()["items"]) == 9
    assert loop_status(loop, loops_root=tmp_path / "loops")["pending"].to_list() == [9]
    (tmp_path / "loops" / "banking" / "1" / "push.json").unlink()  # killed after uploading, before recording it
    assert _run(loop, env=env).waiting_at == "label"
    push = json.loads((tmp_path / "loops" / "banking" / "1" / "push.json").read_text())["outputs"]
    assert (push["created"], push["existing"]) == (0, 9)

    owner = httpx.Client(base_url=argilla_server["url"], headers={"X-Argilla-Api-Key": argilla_server["api_key"]})
    for record in records:
        label = gold[record["fields"]["text"]]
        reply = owner.post(f"/api/v1/records/{record['id']}/responses", json={"values": {"label": {"value": label}}, "status": "submitted"})
        assert reply.status_code == 201, reply.text
    done = _run(loop, env=env)
    assert done.waiting_at is None and (done.folder / "report.md").is_file()
    store = Store(tmp_path / "store")
    merged = store.info("intents")
    assert merged.version == 1 and merged.lineage["parents"] == ["intents@0", "banking-labeled@0"]
    labeled = store.kept("banking-labeled@0")
    assert labeled.height == 10 and set(labeled["label"]) <= set(INTENTS)
    assert sorted(labeled["split"].value_counts().rows()) == [("test", 3), ("train", 7)]
    status = loop_status(loop, loops_root=tmp_path / "loops").row(0, named=True)
    assert status["next_step"] == "finished" and status["labeled"] == 10 and status["promoted"] is not None
    gate = json.loads((done.folder / "gate.json").read_text())["outputs"]
    assert gate["new_run"] != banking_head.run_id and gate["current"] == banking_head.run_id
    assert status["run"] == gate["new_run"] and status["promoted"] == gate["promoted"]
    assert gate["heldout"]["n"] == store.kept("intents@1", split="test").height and gate["failures"]["n"] == 3
    assert EvalResult.load(done.folder / "eval_failures.json").n_examples == 3
    report = (done.folder / "report.md").read_text()
    assert ("**Promoted**" in report) == gate["promoted"] and "gate on failures" in report
    assert "![gate](gate.svg)" in report and (done.folder / "gate.svg").read_text().startswith("<svg")
    assert _run(loop, env=env).iteration is None  # no new production rows: nothing to do


def _served(i: int) -> dict:
    return {"prompt": [{"role": "user", "content": f"question {i}"}], "completion": [{"role": "assistant", "content": "answer"}],
            "model": "m", "ts": f"2026-12-02T06:0{i}:00Z", "meta": {"request_id": f"chatcmpl-{i}"}}  # fmt: skip


def test_collect_from_a_serve_feedback_dataset_takes_only_rows_no_iteration_collected(tmp_path):
    from curate.loop.collect import collect
    from curate.loop.config import CollectConfig
    from curate.serve._feedback_commit import commit_feedback

    store = Store(tmp_path / "store")
    commit_feedback(store, "prod", completions=[_served(1), _served(2)], updates={"chatcmpl-1": {"thumbs": "down"}})
    config = CollectConfig(dataset="prod")
    first = collect(config, store=store, feedback_name="loop-feedback", base_dir=tmp_path, iteration=1)
    assert first.version == 0 and first.rows.height == 2 and first.lineage["dataset"] == "prod@0"
    assert collect(config, store=store, feedback_name="loop-feedback", base_dir=tmp_path, iteration=2).version is None
    commit_feedback(store, "prod", completions=[_served(3)], updates={"chatcmpl-2": {"rating": 1}})
    second = collect(config, store=store, feedback_name="loop-feedback", base_dir=tmp_path, iteration=2)
    # the new completion, and the one whose feedback arrived since (its content id changed)
    assert second.version == 1 and sorted(second.rows["ts"]) == ["2026-12-02T06:02:00Z", "2026-12-02T06:03:00Z"]
    info = store.info("loop-feedback@1")
    assert info.lineage["ts_range"] == ["2026-12-02T06:02:00Z", "2026-12-02T06:03:00Z"]
    assert info.stages[-1].removed_by_reason == {"already_collected": 1} and info.lineage["parents"] == ["prod@1"]


def test_cli_status_and_a_loop_without_its_training_dataset_fails_before_collecting(tmp_path):
    import subprocess
    import sys

    curate = str(Path(sys.executable).with_name("curate"))
    example = Path(__file__).resolve().parent.parent / "pipelines" / "loop.yaml"
    run = subprocess.run([curate, "loop", str(example), "--store", "store", "--loops", "loops"], cwd=tmp_path,  # = loop run
                         capture_output=True, text=True, env={"COLUMNS": "200", "PATH": ""})  # fmt: skip
    assert run.returncode == 1 and "No dataset named 'support'" in run.stderr + run.stdout
    assert "Traceback" not in run.stderr and not (tmp_path / "loops").exists() and not (tmp_path / "store").exists()
    status = subprocess.run([curate, "loop", "status", str(example), "--loops", "loops"], cwd=tmp_path,
                            capture_output=True, text=True, env={"COLUMNS": "200", "PATH": ""})  # fmt: skip
    assert status.returncode == 0 and "No iterations under loops yet" in status.stdout
    typo = subprocess.run([curate, "loop", "simulat"], cwd=tmp_path, capture_output=True, text=True, env={"COLUMNS": "200", "PATH": ""})
    assert typo.returncode == 2 and "Did you mean 'simulate'?" in typo.stderr


def _sft(rows: list[tuple[str, str, str]]) -> pl.DataFrame:
    valid, _ = build_frame("sft", [{"messages": [{"role": "user", "content": u}, {"role": "assistant", "content": label}],
                                    "label": label} for u, label, _ in rows])  # fmt: skip
    return valid.with_columns(split=pl.Series([s for _, _, s in rows]))


def test_merge_adds_labeled_rows_but_drops_copies_of_training_rows_and_leaks_of_held_out_rows(tmp_path):
    from curate.loop.merge import commit_labeled, merge_training
    from curate.stats import StageStats

    store = Store(tmp_path / "store")
    leak = "my card was stolen yesterday in the train station and someone used it to pay for groceries twice"
    old = _sft([("where is my new card", "card_arrival", "train"), ("what exchange rate do you use", "exchange_rate", "train"),
                (leak, "lost_or_stolen_card", "test")])  # fmt: skip
    empty = pl.DataFrame(schema={**old.drop("split").schema, "removed_by": pl.String, "reason": pl.String, "detail": pl.String})
    store.commit("intents", kind="sft", kept=old, removed=empty, stages=[StageStats("convert", "convert", 3, 0, 3, 0)], lineage={})
    labeled = _sft([("Where is my NEW card", "card_arrival", ""), (leak + " at noon", "lost_or_stolen_card", ""),
                    ("my pin is blocked", "pin_blocked", ""), ("top up failed again", "top_up_failed", "")]).drop("split")  # fmt: skip
    ref = commit_labeled(labeled, store=store, name="loop-labeled", holdout=0.25, seed=0, lineage={})
    held = store.kept(ref, split="test")
    assert ref == "loop-labeled@0" and held["messages"].list.first().struct.field("content").to_list() == ["my pin is blocked"]
    merged = merge_training(store, training="intents@0", labeled=ref, lineage={"loop": "t"})
    rows = store.read(merged).select(text=pl.col("messages").list.first().struct.field("content"), split="split", reason="reason")
    assert rows.rows() == [
        ("where is my new card", "train", None), ("what exchange rate do you use", "train", None), (leak, "test", None),
        ("top up failed again", "train", None),  # the only new row that is neither a copy nor a leak
        ("Where is my NEW card", None, "exact_duplicate"), (leak + " at noon", None, "heldout_ngram_overlap"),
    ]  # fmt: skip
    assert store.info(merged).lineage["parents"] == ["intents@0", "loop-labeled@0"]
    assert [s.stage for s in store.info(merged).stages] == ["convert", "dedup_exact", "decontaminate"]


def test_loop_report_plots_the_gate_and_the_learning_curve_over_iterations(tmp_path: Path) -> None:
    from curate.loop.report import write_report
    from curate.loop.state import IterationState, write_json

    def check(new: float) -> dict:
        return {"dataset": "d", "split": "test", "n": 10, "new": new, "new_low": new - 0.1, "new_high": new + 0.05,
                "current": 0.5, "current_low": 0.4, "current_high": 0.6}  # fmt: skip

    first = {"promoted": True, "reasons": [], "heldout": check(0.6), "failures": check(0.3), "new_run": "a", "current": "z"}
    write_json(tmp_path / "0" / "gate.json", {"step": "gate", "done": True, "outputs": first, "time": "t"})
    second = {**first, "heldout": check(0.7), "failures": check(0.5), "new_run": "b", "current": "a"}
    it = IterationState(folder=tmp_path / "1", number=1)
    write_report(it, second)
    report = (tmp_path / "1" / "report.md").read_text()
    assert "![gate](gate.svg)" in report and "![learning](learning.svg)" in report
    curve = (tmp_path / "1" / "learning.svg").read_text()
    assert curve.startswith("<svg") and "iteration" in curve and "failures" in curve
    alone = IterationState(folder=tmp_path / "other" / "0", number=0)
    write_report(alone, {"promoted": True, "reasons": ["there is no current run"], "heldout": None, "failures": None})
    assert not (alone.folder / "gate.svg").exists() and not (alone.folder / "learning.svg").exists()
