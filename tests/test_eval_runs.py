"""curate.evaluate on real runs: tiny local models trained here by curate.train on real data, all offline.

One module-scoped SFT run learns a pattern (Bitext instruction -> its category in lower case)
and one reward run learns that a complete answer beats a cut-off one; every test reads them.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pytest
import yaml

from curate.evaluate.config import EvaluateConfig, GenerationConfig
from curate.evaluate.heldout import HeldOutError
from curate.evaluate.results import EvalResult
from curate.pipeline import run_pipeline

pytest.importorskip("trl")

BITEXT = "bitext_customer_support/Bitext_Sample_Customer_Support_Training_Dataset.csv"


@pytest.fixture(scope="module")
def eval_store(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """``pattern@0`` (sft: instruction -> category) and ``prefs@0`` (full answer chosen over a cut-off one)."""
    folder = tmp_path_factory.mktemp("eval-data")
    bitext = pl.read_csv(shared_data / BITEXT, infer_schema=False)
    pattern = bitext.filter(pl.int_range(pl.len()).over("category") < 40)
    pattern.select("instruction", "category", answer=pl.col("category").str.to_lowercase()).write_csv(folder / "pattern.csv")
    prefs = bitext.filter(pl.int_range(pl.len()).over("category") < 16).select(
        "instruction",
        chosen=pl.col("response"),
        rejected=pl.col("response").str.split(" ").list.head(6).list.join(" "),
    )
    prefs.write_csv(folder / "prefs.csv")
    sources = {
        "pattern": {"path": "pattern.csv", "format": "table", "kind": "sft",
                    "mapping": {"user": "instruction", "assistant": "answer", "label": "category"}},
        "prefs": {"path": "prefs.csv", "format": "table", "kind": "preference",
                  "mapping": {"prompt": "instruction", "chosen": "chosen", "rejected": "rejected"}},
    }  # fmt: skip
    for name, source in sources.items():
        spec = {"source": source, "stages": [{"split": {"test": 0.15, "validation": 0.1, "seed": 0}}], "output": name}
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
        run_pipeline(folder / f"{name}.yaml", store_root=folder / "store")
    return folder / "store"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, eval_store: Path, tiny_lm: Path) -> dict[str, Path]:  # noqa: F811
    """Two completed runs: ``sft`` (full fine-tune on pattern@0) and ``reward`` (full reward model on prefs@0)."""
    from curate.train.recipe import Recipe
    from curate.train.runner import train

    root = tmp_path_factory.mktemp("runs")
    common = {"model": str(tiny_lm), "adapter": "full", "seed": 0}
    sft = train(
        Recipe(**common, dataset="pattern@0", method="sft",
               training={"epochs": 10, "batch_size": 64, "learning_rate": 3e-3, "save_strategy": "no", "max_length": 128}),
        store=eval_store, output=root,
    )  # fmt: skip
    reward = train(
        Recipe(**common, dataset="prefs@0", method="reward",
               training={"epochs": 3, "batch_size": 16, "learning_rate": 1e-3, "save_strategy": "no",
                         "eval_strategy": "no", "max_length": 160}),
        store=eval_store, output=root,
    )  # fmt: skip
    return {"sft": sft.path, "reward": reward.path, "root": root}


def _config(**kw: object) -> EvaluateConfig:
    base = {"generation": {"max_new_tokens": 8, "batch_size": 32}, "batch_size": 64, "bootstrap": {"resamples": 500}}
    return EvaluateConfig.model_validate({**base, **kw})


def test_run_trained_on_a_pattern_beats_its_base_outside_the_interval(runs: dict[str, Path], eval_store: Path) -> None:
    from curate.evaluate.run import eval_run

    result = eval_run(
        runs["sft"], config=_config(metrics=["loss", "exact_match", "token_f1", "label_accuracy"]),
        store_root=eval_store, runs_root=runs["root"],
    )  # fmt: skip
    assert result.dataset == "pattern@0" and result.split == "test"  # defaults: the trained version's test split
    assert result.baseline.startswith("base (")
    for name in ("loss", "perplexity", "exact_match", "token_f1", "label_accuracy", "label_macro_f1"):
        m = result.metric(name)
        assert m.verdict == "better", (name, m)
        assert m.low <= m.value <= m.high
    em = result.metric("exact_match")
    assert em.diff_low > 0 and em.value > 0.5 and em.baseline == 0.0
    assert result.metric("loss").diff_high < 0
    assert sum(map(sum, result.details["confusion_matrix"]["counts"])) == result.n_examples

    eval_dir = runs["sft"] / "eval"
    saved = EvalResult.load(eval_dir / "pattern@0.json")
    assert saved.metric("exact_match").value == em.value
    assert len(saved.examples) == result.n_examples
    assert (eval_dir / "pattern@0.md").read_text(encoding="utf-8").startswith("# Evaluation of ")
    manifest = json.loads((runs["sft"] / "manifest.json").read_text(encoding="utf-8"))
    headline = manifest["evaluation"]["pattern@0"]["metrics"]["exact_match"]
    assert headline["verdict"] == "better" and headline["value"] == em.value


def test_perplexity_equals_exp_of_the_trainers_eval_loss(runs: dict[str, Path], eval_store: Path) -> None:
    from curate.evaluate.run import eval_run

    manifest = json.loads((runs["sft"] / "manifest.json").read_text(encoding="utf-8"))
    trainer_loss = manifest["metrics"]["eval_loss"]  # validation rows fit one eval batch (64), so no batch averaging
    result = eval_run(
        runs["sft"], config=_config(split="validation", metrics=["loss"], baseline=None, max_length=128),
        store_root=eval_store, runs_root=runs["root"], save=False,
    )  # fmt: skip
    assert result.metric("loss").value == pytest.approx(trainer_loss, rel=1e-5)
    assert result.metric("perplexity").value == pytest.approx(math.exp(trainer_loss), rel=1e-5)


def test_evaluating_on_training_rows_is_refused(runs: dict[str, Path], eval_store: Path) -> None:
    from curate.evaluate.run import eval_run

    with pytest.raises(HeldOutError, match=r"Refusing to evaluate run '.+' on pattern@0 split 'train': \d+ of its \d+ rows "
                       r"were in the train split of pattern@0.*--split test"):  # fmt: skip
        eval_run(runs["sft"], config=_config(split="train"), store_root=eval_store, runs_root=runs["root"], save=False)


def test_reward_model_prefers_chosen_answers_on_held_out_pairs(runs: dict[str, Path], eval_store: Path) -> None:
    from curate.evaluate.run import eval_run

    result = eval_run(
        runs["reward"], config=_config(metrics=["preference_accuracy"]), store_root=eval_store, runs_root=runs["root"]
    )
    acc = result.metric("preference_accuracy")
    assert result.dataset == "prefs@0" and result.baseline is None  # a base LM has no reward head to compare
    assert acc.value > 0.5 and acc.low > 0.5
    assert result.worst(1)[0]["margin"] == min(e["margin"] for e in result.examples)


def test_win_rate_of_a_model_against_itself_is_one_half(runs: dict[str, Path], eval_store: Path) -> None:
    from curate.evaluate.run import eval_run

    config = _config(metrics=["win_rate"], baseline=str(runs["sft"]), judge={"kind": "reward_model", "model": str(runs["reward"])})
    result = eval_run(runs["sft"], config=config, store_root=eval_store, runs_root=runs["root"], save=False)
    wr = result.metric("win_rate")
    assert wr.value == 0.5 and wr.low <= 0.5 <= wr.high
    assert result.details["win_rate"]["ties"] == result.n_examples  # greedy answers are identical


def test_sampled_answers_of_one_model_win_half_the_time_within_the_interval(runs: dict[str, Path], eval_store: Path) -> None:
    from curate.evaluate.generation import generate_answers
    from curate.evaluate.judges import RewardModelJudge
    from curate.evaluate.models import load_model, resolve_target
    from curate.evaluate.winrate import pairwise_win_rate
    from curate.store import Store

    policy = load_model(resolve_target(runs["sft"]))
    judge = load_model(resolve_target(runs["reward"]))
    rows = Store(eval_store).kept("pattern@0", split="test")
    prompts = [[{"role": "user", "content": m[0]["content"]}] for m in rows["messages"].to_list()]
    x = generate_answers(*policy.pair, prompts, config=GenerationConfig(do_sample=True, temperature=1.5, seed=1, max_new_tokens=12, batch_size=32))
    y = generate_answers(*policy.pair, prompts, config=GenerationConfig(do_sample=True, temperature=1.5, seed=2, max_new_tokens=12, batch_size=32))
    assert x != y
    wr = pairwise_win_rate(prompts, x, y, RewardModelJudge(*judge.pair), resamples=500)
    assert wr.interval.low <= 0.5 <= wr.interval.high
    assert wr.inconsistent == 0  # a reward model has no position bias


def test_left_padded_batches_give_the_same_greedy_answers_as_one_by_one(runs: dict[str, Path], eval_store: Path) -> None:
    from curate.evaluate.generation import generate_answers
    from curate.evaluate.models import load_model, resolve_target
    from curate.store import Store

    model = load_model(resolve_target(runs["sft"]))
    msgs = Store(eval_store).kept("pattern@0", split="test")["messages"].to_list()[:12]
    prompts = [[{"role": "user", "content": m[0]["content"] * (1 + i % 3)}] for i, m in enumerate(msgs)]  # uneven lengths
    batched = generate_answers(*model.pair, prompts, config=GenerationConfig(max_new_tokens=6, batch_size=12))
    single = generate_answers(*model.pair, prompts, config=GenerationConfig(max_new_tokens=6, batch_size=1))
    assert batched == single
    assert model.tokenizer.padding_side == "right"  # restored


def test_forgetting_check_compares_tuned_and_base_on_mt_bench(runs: dict[str, Path], eval_store: Path, shared_data: Path) -> None:
    from curate.evaluate.run import eval_run

    questions = shared_data / "fastchat" / "mt_bench" / "question.jsonl"
    config = _config(metrics=["loss"], forgetting={"questions": str(questions), "tolerance": 0.05})
    result = eval_run(runs["sft"], config=config, store_root=eval_store, runs_root=runs["root"], save=False)
    fg = result.details["forgetting"]
    assert fg["n_prompts"] == 80 and fg["n_references"] >= 30
    assert fg["perplexity_ratio"] == pytest.approx(fg["perplexity_tuned"] / fg["perplexity_base"])
    assert fg["regressed"] == (fg["perplexity_ratio"] > 1.05)
    assert fg["loss_diff"]["low"] <= fg["loss_diff"]["value"] <= fg["loss_diff"]["high"]


def test_llm_judge_without_a_verdict_counts_ties(runs: dict[str, Path], tiny_lm: Path) -> None:  # noqa: F811
    from curate.evaluate.judges import LLMJudge
    from curate.evaluate.models import load_model, resolve_target
    from curate.evaluate.winrate import pairwise_win_rate

    judge = LLMJudge(*load_model(resolve_target(tiny_lm)).pair, generation=GenerationConfig(max_new_tokens=8, batch_size=4))
    q = [[{"role": "user", "content": "Where is my order?"}]] * 4
    wr = pairwise_win_rate(q, ["It ships today."] * 4, ["No."] * 4, judge, resamples=100)
    assert len(judge.raw) == 8  # both orders
    assert wr.ties + wr.wins + wr.losses == 4
    assert judge.unparsed == sum(1 for t in judge.raw if "[[" not in t)


def test_dpo_margin_of_a_model_against_itself_is_zero(runs: dict[str, Path], eval_store: Path) -> None:
    from curate.evaluate.models import load_model, resolve_target
    from curate.evaluate.preference import dpo_reward_margins
    from curate.store import Store

    m = load_model(resolve_target(runs["sft"]))
    rows = Store(eval_store).kept("prefs@0", split="test").head(6).to_dicts()
    margins = dpo_reward_margins(m.model, m.model, m.tokenizer, rows, beta=0.1)
    assert margins == pytest.approx([0.0] * 6, abs=1e-6)


def test_cli_eval_and_compare_print_the_table_and_write_reports(runs: dict[str, Path], eval_store: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from curate.cli import app

    cli = CliRunner(env={"COLUMNS": "240"})
    args = ["--store", str(eval_store), "--runs", str(runs["root"]), "--max-examples", "12"]
    out = cli.invoke(app, ["eval", runs["sft"].name, "--metrics", "exact_match", "--out", str(tmp_path / "e"), *args])
    assert out.exit_code == 0, out.output
    assert "exact_match" in out.output and "better" in out.output
    assert (tmp_path / "e" / "pattern@0.html").is_file()
    out = cli.invoke(app, ["compare", runs["sft"].name, runs["sft"].name, "--metrics", "exact_match", "--out", str(tmp_path / "c"), *args])
    assert out.exit_code == 0, out.output
    assert "no clear difference" in out.output
    bad = cli.invoke(app, ["eval", runs["sft"].name, "--metrics", "bertscore", *args])
    assert bad.exit_code != 0 and "unknown metric(s) ['bertscore']" in str(bad.exception)


def test_report_renders_in_a_headless_browser(runs: dict[str, Path], eval_store: Path, tmp_path: Path) -> None:
    from curate.evaluate.run import eval_run

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no chromium on this machine")
    config = _config(metrics=["exact_match", "label_accuracy"], max_examples=12)
    eval_run(runs["sft"], config=config, store_root=eval_store, runs_root=runs["root"], out_dir=tmp_path)
    page = tmp_path / "pattern@0.html"
    dom = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert '<table id="metrics">' in dom and '<table id="confusion">' in dom
    assert dom.count('class="example"') == 12


def test_after_training_hook_uses_the_pipeline_block_over_the_recipes(runs: dict[str, Path], eval_store: Path) -> None:
    from curate.evaluate.run import evaluate_after_training

    assert evaluate_after_training(runs["sft"], recipe_config=None, store_root=eval_store) is None
    result = evaluate_after_training(
        runs["sft"], recipe_config=_config(metrics=["loss"]),
        pipeline_config=_config(metrics=["exact_match"], max_examples=8), store_root=eval_store,
    )  # fmt: skip
    assert [m.name for m in result.metrics] == ["exact_match"] and result.n_examples == 8
