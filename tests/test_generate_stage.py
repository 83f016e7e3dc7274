"""The ``generate`` stage through the real runner and store: prompts in, preference pairs out.

Generators are the tiny random Llama (tests/lm_fixtures.py) through the ``transformers``
backend, and an ``openai`` generator pointed at a closed port; the judge is a tiny
random reward model saved as a model folder, or the tiny Llama reading the MT-Bench template.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from curate.cli import app
from curate.errors import ConfigError, StageError
from curate.pipeline import run_pipeline
from curate.records import SCHEMAS
from curate.store import Store

QUESTIONS = ["where is my refund", "cancel my order", "reset my password", "track my package", "i need a new card"]


def _sft_file(folder: Path) -> Path:
    rows = [
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": q},
                      {"role": "assistant", "content": f"Sure, I can help: {q}."}], "label": f"intent{i % 2}"}
        for i, q in enumerate(QUESTIONS)
    ]  # fmt: skip
    rows.append(dict(rows[0]))  # a duplicate, removed by dedup_exact before generate
    path = folder / "sft.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _prompt_file(folder: Path) -> Path:
    path = folder / "prompts.csv"
    pl.DataFrame({"text": QUESTIONS[:3], "category": ["refund", "order", "account"]}).write_csv(path)
    return path


PROMPT_SOURCE = {"path": "prompts.csv", "format": "table", "kind": "prompt", "mapping": {"prompt": "text", "label": "category"}}


def _sampled(model: Path, *, temperature: float = 1.0, seed: int = 0, max_new_tokens: int = 8) -> dict:
    sampling = {"do_sample": True, "temperature": temperature, "seed": seed, "max_new_tokens": max_new_tokens}
    return {"model": str(model), "sampling": sampling}


def _run(folder: Path, source: dict, stages: list, *, output: str = "pairs", env: dict | None = None):
    path = folder / f"{output}.yaml"
    path.write_text(yaml.safe_dump({"source": source, "stages": stages, "output": output}), encoding="utf-8")
    return run_pipeline(path, store_root=folder / "store", env=env)


def _meta(frame: pl.DataFrame) -> list[dict]:
    return [json.loads(m)["generate"] for m in frame["meta"]]


@pytest.fixture(scope="module")
def reward_model(tiny_lm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random one-label sequence classifier (a reward model folder) with the tiny LM's tokenizer."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(tiny_lm)
    config = LlamaConfig.from_pretrained(tiny_lm, num_labels=1)
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("reward-model")
    LlamaForSequenceClassification(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def test_generate_turns_sft_rows_into_preference_pairs_and_records_the_kind_change(tiny_lm: Path, tmp_path: Path) -> None:
    _sft_file(tmp_path)
    stages = ["dedup_exact", {"generate": {"generators": [_sampled(tiny_lm)], "n": 1}}]
    summary = _run(tmp_path, {"path": "sft.jsonl"}, stages)

    store = Store(tmp_path / "store")
    assert summary.kind == store.kind("pairs@0") == "preference"
    info = store.info("pairs@0").lineage
    assert info["kind_changes"] == [{"stage": "generate", "from": "sft", "to": "preference"}]
    by_stage = {s["stage"]: s for s in info["stages"]}
    assert (by_stage["generate"]["rows_in"], by_stage["generate"]["rows_kept"]) == (5, 5)
    assert all(s.balanced for s in summary.stages)
    log = CliRunner().invoke(app, ["datasets", "log", "pairs", "--store", str(tmp_path / "store")])
    assert "kind=preference" in log.stdout and "kind:     sft -> preference (stage generate)" in log.stdout

    kept = store.kept("pairs@0")
    assert list(SCHEMAS["preference"]) == kept.columns[: len(SCHEMAS["preference"])]
    for row, meta in zip(kept.iter_rows(named=True), _meta(kept), strict=True):
        assert row["prompt"][-1]["role"] == "user" and row["prompt"][0]["content"] == "Be brief."
        assert {meta["chosen_generator"], meta["rejected_generator"]} == {"reference", str(tiny_lm)}
        assert meta["ranked"] is False and row["margin"] is None
        texts = {row["chosen"][0]["content"], row["rejected"][0]["content"]}
        assert f"Sure, I can help: {row['prompt'][-1]['content']}." in texts
        assert [c["generator"] for c in meta["candidates"]] == ["reference", str(tiny_lm)]
    # the duplicate removed before `generate` is still an sft row with its messages
    removed = store.read("pairs@0").filter(pl.col("removed_by") == "dedup_exact")
    assert removed.height == 1
    assert removed["messages"][0].to_list()[1] == {"role": "user", "content": QUESTIONS[0]}


def test_generate_from_prompt_rows_with_two_generators_names_the_generator_of_each_side(tiny_lm: Path, tmp_path: Path) -> None:
    _prompt_file(tmp_path)
    generators = [_sampled(tiny_lm, temperature=0.7, seed=1), _sampled(tiny_lm, temperature=1.5, seed=2)]
    summary = _run(tmp_path, PROMPT_SOURCE, [{"generate": {"generators": generators, "n": 1, "seed": 3}}])

    kept = Store(tmp_path / "store").kept("pairs@0")
    assert kept.height == 3 and summary.kind == "preference"
    names = [str(tiny_lm), f"{tiny_lm}#2"]
    assert [g["name"] for g in summary.stages[-1].extra["generators"]] == names
    assert [g["sampling"]["temperature"] for g in summary.stages[-1].extra["generators"]] == [0.7, 1.5]
    for row, meta in zip(kept.iter_rows(named=True), _meta(kept), strict=True):
        assert sorted([meta["chosen_generator"], meta["rejected_generator"]]) == names
        by_name = {c["generator"]: c["text"] for c in meta["candidates"]}
        assert row["chosen"][0]["content"] == by_name[meta["chosen_generator"]]
        assert row["rejected"][0]["content"] == by_name[meta["rejected_generator"]]
    assert sorted(kept["label"].to_list()) == ["account", "order", "refund"]


def test_a_reward_model_judge_fills_chosen_rejected_and_margin(tiny_lm: Path, reward_model: Path, tmp_path: Path) -> None:
    from curate.evaluate.models import load_model, resolve_target
    from curate.evaluate.preference import reward_scores

    _prompt_file(tmp_path)
    generate = {"generators": [_sampled(tiny_lm)], "n": 3, "judge": {"kind": "reward_model", "model": str(reward_model)}}
    summary = _run(tmp_path, PROMPT_SOURCE, [{"generate": generate}])

    kept = Store(tmp_path / "store").kept("pairs@0")
    assert summary.stages[-1].extra["ranked"] == kept.height == 3
    rm = load_model(resolve_target(reward_model), device="cpu")
    for row, meta in zip(kept.iter_rows(named=True), _meta(kept), strict=True):
        scores = [c["score"] for c in meta["candidates"]]
        assert meta["ranked"] is True
        assert row["margin"] == pytest.approx(max(scores) - min(scores)) and row["margin"] > 0
        chosen, rejected = row["chosen"][0]["content"], row["rejected"][0]["content"]
        assert chosen == meta["candidates"][scores.index(max(scores))]["text"]
        assert rejected == meta["candidates"][scores.index(min(scores))]["text"]
        direct = reward_scores(*rm.pair, [row["prompt"] + row["chosen"], row["prompt"] + row["rejected"]])
        assert direct[0] - direct[1] == pytest.approx(row["margin"], abs=1e-4)


def test_an_llm_judge_that_cannot_tell_leaves_the_pairs_unranked(tiny_lm: Path, tmp_path: Path) -> None:
    """The tiny random LM writes no [[A]]/[[B]] verdict: every comparison is a tie, margin 0 <= tie_margin."""
    _prompt_file(tmp_path)
    judge = {"kind": "llm", "model": str(tiny_lm), "max_new_tokens": 4}
    summary = _run(tmp_path, PROMPT_SOURCE, [{"generate": {"generators": [_sampled(tiny_lm)], "n": 2, "judge": judge}}])

    kept = Store(tmp_path / "store").kept("pairs@0")
    assert summary.stages[-1].extra["unranked"] == kept.height == 3
    for meta in _meta(kept):
        assert meta["ranked"] is False and meta["judge"] == str(tiny_lm)
        assert [c["score"] for c in meta["candidates"]] == [0.5, 0.5]
    assert kept["margin"].null_count() == 3
    assert summary.stages[-1].extra["judge_unparsed"] == 6  # one pair per prompt, judged in both orders


def test_generate_on_no_rows_loads_no_model_and_still_writes_a_preference_version(tmp_path: Path) -> None:
    (tmp_path / "sft.jsonl").write_text('{"messages": []}\n', encoding="utf-8")  # removed by convert
    missing = {"model": str(tmp_path / "no-such-model")}
    summary = _run(tmp_path, {"path": "sft.jsonl", "kind": "sft"}, [{"generate": {"generators": [missing], "n": 1}}])
    assert (summary.kind, summary.stages[-1].rows_in, summary.stages[-1].extra["pairs"]) == ("preference", 0, 0)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_failing_and_empty_generations_are_removed_with_their_reasons(tiny_lm: Path, tmp_path: Path) -> None:
    _prompt_file(tmp_path)
    down = f"http://127.0.0.1:{_closed_port()}/v1"
    failing = {"backend": "openai", "model": "m", "url": down, "timeout_s": 2, "max_retries": 0}
    summary = _run(tmp_path, PROMPT_SOURCE, [{"generate": {"generators": [failing, {"model": str(tiny_lm)}]}}])

    assert summary.stages[-1].removed_by_reason == {"generation_failed": 3}
    assert summary.version == 0 and all(s.balanced for s in summary.stages)
    removed = Store(tmp_path / "store").read("pairs@0").filter(pl.col("reason").is_not_null())
    for detail in map(json.loads, removed["detail"]):
        assert detail["generators"] == ["openai:m", str(tiny_lm)]
        assert down.removesuffix("/v1") in detail["errors"]["openai:m"]
    assert removed["prompt"].list.len().to_list() == [1, 1, 1]  # removed rows keep their prompt

    # one greedy generator answers the same text twice: fewer than two distinct candidates
    greedy = _run(tmp_path, PROMPT_SOURCE, [{"generate": {"generators": [{"model": str(tiny_lm)}], "n": 2}}], output="greedy")
    assert greedy.stages[-1].removed_by_reason == {"empty_generation": 3}
    details = map(json.loads, Store(tmp_path / "store").read("greedy@0")["detail"])
    assert {(d["candidates"], d["distinct_non_empty"]) for d in details} == {(2, 1)}


def test_a_generator_that_looks_down_is_not_asked_again_for_every_prompt(tmp_path: Path) -> None:
    """After a failed batch each prompt is retried alone; after 3 failures in a row the rest are not tried."""
    _sft_file(tmp_path)
    down = f"http://127.0.0.1:{_closed_port()}/v1"
    failing = {"backend": "openai", "model": "m", "url": down, "timeout_s": 2, "max_retries": 0}
    summary = _run(tmp_path, {"path": "sft.jsonl"}, ["dedup_exact", {"generate": {"generators": [failing]}}])

    assert summary.stages[-1].removed_by_reason == {"generation_failed": 5}
    removed = Store(tmp_path / "store").read("pairs@0").filter(pl.col("removed_by") == "generate")
    errors = [json.loads(d)["errors"]["openai:m"] for d in removed["detail"]]
    assert [e.startswith("not tried: openai:m failed on 3 prompts in a row") for e in errors] == [False] * 3 + [True] * 2
    assert removed["messages"].list.len().to_list() == [3] * 5  # the sft rows, messages intact


def test_a_generator_model_that_does_not_exist_stops_the_run_naming_the_stage_and_generator(tmp_path: Path) -> None:
    _prompt_file(tmp_path)
    generators = [{"backend": "openai", "model": "m", "url": "http://127.0.0.1:9/v1", "max_retries": 0},
                  {"model": "no-such-model"}]
    with pytest.raises(StageError, match=r"Stage 'generate' \(generate\), generator 2 of 2 \(transformers, model "
                                         r"'no-such-model'\): No run or model 'no-such-model'"):
        _run(tmp_path, PROMPT_SOURCE, [{"generate": {"generators": generators}}])
    assert not (tmp_path / "store").exists() or Store(tmp_path / "store").names() == []


def test_generated_pairs_appear_as_argilla_records_through_the_label_stage(tiny_lm: Path, argilla_server, tmp_path: Path) -> None:
    import argilla as rg

    from curate.argilla.errors import NothingSubmittedError

    _prompt_file(tmp_path)
    generators = [_sampled(tiny_lm, seed=1), _sampled(tiny_lm, seed=2, temperature=1.3)]
    stages = [{"generate": {"generators": generators, "n": 1}}, {"label": {"dataset": "generated-pairs"}}]
    env = {"ARGILLA_API_URL": argilla_server["url"], "ARGILLA_API_KEY": argilla_server["api_key"]}
    with pytest.raises(NothingSubmittedError, match="3 new pairs pushed to Argilla dataset 'generated-pairs'"):
        _run(tmp_path, PROMPT_SOURCE, stages, env=env)

    client = rg.Argilla(api_url=argilla_server["url"], api_key=argilla_server["api_key"])
    records = list(client.datasets("generated-pairs", workspace="argilla").records)
    assert len(records) == 3
    for record in records:
        row = json.loads(record.metadata["curate_row"])
        shown = {record.fields["response_a"], record.fields["response_b"]}
        assert shown == {row["chosen"][0]["content"], row["rejected"][0]["content"]}
        assert json.loads(row["meta"])["generate"]["ranked"] is False
    assert "pairs" not in Store(tmp_path / "store").names()


def test_stages_whose_record_kinds_do_not_fit_fail_when_the_file_is_loaded(tmp_path: Path) -> None:
    gen = {"generate": {"generators": [{"model": "m"}]}}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"source": {"path": "x.jsonl"}, "stages": [gen, gen], "output": "o"}))
    with pytest.raises(ConfigError, match=r"stage 'generate#2' reads sft or prompt rows, but `generate` turns the rows "
                                          r"into preference rows; move or remove 'generate#2'"):
        run_pipeline(path, store_root=tmp_path / "store")
    path.write_text(yaml.safe_dump({"source": {"path": "x.jsonl", "kind": "sft"}, "stages": ["label"], "output": "o"}))
    with pytest.raises(ConfigError, match="stage 'label' reads preference rows, but the source has sft rows"):
        run_pipeline(path, store_root=tmp_path / "store")


def test_a_source_whose_inferred_kind_does_not_fit_fails_before_any_stage_runs(tmp_path: Path) -> None:
    _sft_file(tmp_path)
    with pytest.raises(ConfigError, match=r"stage 'label' reads preference rows, but the source has sft rows.*No stage ran"):
        _run(tmp_path, {"path": "sft.jsonl"}, ["dedup_exact", "label"])
    assert not (tmp_path / "store").exists() or Store(tmp_path / "store").names() == []
