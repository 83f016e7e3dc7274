"""curate.evaluate without models: metrics, intervals, win-rate counting, judge templates, reports, exports."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from curate.errors import ConfigError
from curate.evaluate.bootstrap import bootstrap_ci, paired_bootstrap_diff
from curate.evaluate.classification import accuracy, confusion_matrix, macro_f1, match_label
from curate.evaluate.config import EvaluateConfig
from curate.evaluate.forgetting import load_regression_set
from curate.evaluate.harness import export_lm_eval_task
from curate.evaluate.heldout import HeldOutError, check_held_out
from curate.evaluate.judges import PAIR_V2, load_judge_template, parse_verdict
from curate.evaluate.metrics import (
    corpus_bleu,
    exact_match_score,
    json_valid_score,
    length_ratio,
    normalise_answer,
    rouge_l_score,
    score_texts,
    token_f1_score,
)
from curate.evaluate.report import render_html, render_markdown, write_report
from curate.evaluate.results import EvalResult, MetricResult
from curate.evaluate.winrate import pairwise_win_rate
from curate.pipeline import run_pipeline
from curate.store import Store
from helpers import SUPPORT_ROWS, write_jsonl, write_pipeline

# -- text metrics ------------------------------------------------------------------------


def test_exact_match_ignores_case_punctuation_articles_and_spacing() -> None:
    assert normalise_answer("  The Refund, is ready! ") == "refund is ready"
    assert exact_match_score("The refund is READY.", "refund is ready") == 1.0
    assert exact_match_score("refund ready", "refund is ready") == 0.0


def test_token_f1_counts_overlapping_tokens() -> None:
    assert token_f1_score("the cat sat", "the cat sat down") == pytest.approx(0.8)  # p=1, r=2/3 after "the" goes
    assert token_f1_score("", "") == 1.0
    assert token_f1_score("dog", "cat") == 0.0


def test_rouge_bleu_chrf_are_one_for_identical_text_and_lower_otherwise() -> None:
    ref = "your refund was issued to the original card today"
    scores = score_texts([ref, "refund issued today"], [ref, ref], metrics=["rouge_l", "bleu", "chrf"])
    for name, (same, partial) in scores.items():
        assert same == pytest.approx(1.0), name
        assert 0.0 <= partial < 1.0, name
    assert rouge_l_score("refund issued today", ref) == pytest.approx(2 * (3 / 3 * 3 / 9) / (1 + 3 / 9))
    assert corpus_bleu([ref], [ref]) == pytest.approx(1.0)


def test_length_ratio_and_json_validity() -> None:
    assert length_ratio("a b c d", "a b") == 2.0
    assert json_valid_score('{"intent": "refund"}') == 1.0
    assert json_valid_score('```json\n[1, 2]\n```') == 1.0
    assert json_valid_score("intent: refund") == 0.0
    assert json_valid_score('"just a string"') == 0.0


def test_score_texts_rejects_unknown_metrics_and_misaligned_inputs() -> None:
    with pytest.raises(ValueError, match="Unknown text metric"):
        score_texts(["a"], ["a"], metrics=["bertscore"])
    with pytest.raises(ValueError, match="must be aligned"):
        score_texts(["a", "b"], ["a"], metrics=["exact_match"])


# -- labels ------------------------------------------------------------------------------


def test_generated_answer_maps_to_the_label_it_names() -> None:
    labels = ["CANCELLATION_FEE", "ORDER", "REFUND"]
    assert match_label("refund", labels) == "REFUND"
    assert match_label("It is about your cancellation_fee.", labels) == "CANCELLATION_FEE"
    assert match_label("no idea", labels) is None


def test_accuracy_macro_f1_and_confusion_matrix() -> None:
    true = ["a", "a", "b", "b"]
    pred = ["a", "b", "b", None]
    assert accuracy(pred, true) == 0.5
    # a: tp1 fp0 fn1 -> 2/3; b: tp1 fp1 fn1 -> 1/2
    assert macro_f1(pred, true) == pytest.approx((2 / 3 + 1 / 2) / 2)
    cm = confusion_matrix(pred, true)
    assert cm.labels == ["a", "b", "(none)"]
    assert cm.counts == [[1, 1, 0], [0, 1, 1], [0, 0, 0]]


# -- bootstrap ---------------------------------------------------------------------------


def test_bootstrap_interval_brackets_the_mean_and_is_reproducible() -> None:
    values = [1, 0, 1, 1, 0, 1, 1, 1, 0, 1] * 5
    a = bootstrap_ci(values, resamples=500, seed=3)
    assert a == bootstrap_ci(values, resamples=500, seed=3)
    assert a.value == pytest.approx(0.7)
    assert a.low < 0.7 < a.high
    assert 0.5 < a.low and a.high < 0.85


def test_paired_difference_is_significant_only_for_a_real_gain() -> None:
    base = [0.0, 1.0] * 30
    better = [1.0] * 60
    assert paired_bootstrap_diff(better, base).low > 0
    assert paired_bootstrap_diff(base, list(base)).contains(0.0)


# -- win rate ----------------------------------------------------------------------------


class _PrefersFirst:
    """A judge with pure position bias: always says A."""

    def compare(self, questions, answers_a, answers_b):  # noqa: ANN001, ANN201
        return ["A"] * len(questions)


class _PrefersLonger:
    def compare(self, questions, answers_a, answers_b):  # noqa: ANN001, ANN201
        return ["A" if len(a) > len(b) else "B" if len(b) > len(a) else "tie" for a, b in zip(answers_a, answers_b)]


def test_position_swap_turns_a_position_biased_judge_into_ties() -> None:
    q = [[{"role": "user", "content": f"q{i}"}] for i in range(20)]
    wr = pairwise_win_rate(q, ["x"] * 20, ["y"] * 20, _PrefersFirst())
    assert (wr.wins, wr.ties, wr.losses, wr.inconsistent) == (0, 20, 0, 20)
    assert wr.rate == 0.5
    unswapped = pairwise_win_rate(q, ["x"] * 20, ["y"] * 20, _PrefersFirst(), swap=False)
    assert unswapped.rate == 1.0


def test_win_rate_counts_wins_ties_and_losses_with_an_interval() -> None:
    q = [[{"role": "user", "content": "q"}]] * 40
    x = ["long answer"] * 30 + ["s"] * 5 + ["same"] * 5
    y = ["short"] * 30 + ["longer"] * 5 + ["same"] * 5
    wr = pairwise_win_rate(q, x, y, _PrefersLonger(), resamples=300)
    assert (wr.wins, wr.ties, wr.losses) == (30, 5, 5)
    assert wr.rate == pytest.approx((30 + 2.5) / 40)
    assert wr.interval.low > 0.5


# -- judge templates ---------------------------------------------------------------------


def test_fastchat_pair_template_loads_and_renders(shared_data: Path) -> None:
    t = load_judge_template(shared_data / "fastchat" / "judge_prompts.jsonl", name="pair-v2")
    msgs = t.render(question="Where is my order?", answer_a="On its way.", answer_b="No idea.")
    assert msgs[0]["role"] == "system" and "[[A]]" in msgs[0]["content"]
    assert "[The Start of Assistant A's Answer]\nOn its way." in msgs[1]["content"]
    with pytest.raises(ConfigError, match="is 'single', a pairwise one is needed"):
        load_judge_template(shared_data / "fastchat" / "judge_prompts.jsonl", name="single-v1")
    with pytest.raises(ConfigError, match="no judge template named 'pair-v9'"):
        load_judge_template(shared_data / "fastchat" / "judge_prompts.jsonl", name="pair-v9")
    assert "{answer_b}" in PAIR_V2.prompt_template


def test_verdict_is_the_last_tag_and_c_is_a_tie() -> None:
    assert parse_verdict("A is vague; B is right. [[B]]") == "B"
    assert parse_verdict("[[A]] ... on reflection [[C]]") == "tie"
    assert parse_verdict("both fine") is None


# -- config ------------------------------------------------------------------------------


def test_evaluate_block_fails_on_load_for_unknown_metric_or_missing_judge(tmp_path: Path) -> None:
    from curate.yamlfile import load_yaml_model

    bad = tmp_path / "eval.yaml"
    bad.write_text("split: test\nmetrics: [loss, bertscore]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"line 2.*unknown metric\(s\) \['bertscore'\]"):
        load_yaml_model(bad, EvaluateConfig)
    with pytest.raises(ValueError, match="`win_rate` needs a `judge`"):
        EvaluateConfig(metrics=["win_rate"])
    assert EvaluateConfig(metrics=["win_rate"], judge={"kind": "reward_model", "model": "runs/rm"}).baseline == "base"


# -- regression set ----------------------------------------------------------------------


def test_mt_bench_questions_load_with_their_references(shared_data: Path) -> None:
    prompts = load_regression_set(shared_data / "fastchat" / "mt_bench" / "question.jsonl")
    assert len(prompts) == 80
    by_id = {p.id: p for p in prompts}
    assert by_id["81"].category == "writing" and by_id["81"].reference is None
    assert by_id["101"].reference == "You are in second place."
    assert sum(p.reference is not None for p in prompts) >= 30
    assert len(load_regression_set(shared_data / "fastchat" / "mt_bench" / "question.jsonl", max_questions=5)) == 5


def test_missing_regression_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="evaluate.forgetting.questions"):
        load_regression_set(tmp_path / "nope.jsonl")


# -- store-backed: held-out check and lm-eval export -------------------------------------


@pytest.fixture
def support_store(tmp_path: Path) -> Path:
    write_jsonl(tmp_path / "data.jsonl", SUPPORT_ROWS)
    run_pipeline(write_pipeline(tmp_path), store_root=tmp_path / "store")
    return tmp_path / "store"


def test_rows_from_the_train_split_are_refused(support_store: Path) -> None:
    store = Store(support_store)
    train_ids = store.kept("support@0", split="train")["id"].to_list()
    test_ids = store.kept("support@0", split="test")["id"].to_list()
    check_held_out(store, trained_on="support@0", run="r1", eval_ref="support@0", split="test", eval_ids=test_ids)
    with pytest.raises(HeldOutError, match=r"Refusing to evaluate run 'r1' on support@0 split 'train': \d+ of its \d+ rows"):
        check_held_out(store, trained_on="support@0", run="r1", eval_ref="support@0", split="train", eval_ids=train_ids)


def test_test_split_exports_as_an_lm_eval_task(support_store: Path, tmp_path: Path) -> None:
    store = Store(support_store)
    path = export_lm_eval_task(store, "support", tmp_path / "tasks", labels=False)
    task = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert task["task"] == "curate_support_0_test" and task["output_type"] == "generate_until"
    docs = [json.loads(line) for line in Path(task["dataset_kwargs"]["data_files"]["test"]).read_text().splitlines()]
    assert len(docs) == store.kept("support@0", split="test").height
    assert docs[0]["prompt"].startswith("User: ") and docs[0]["prompt"].endswith("Assistant:")
    labelled = yaml.safe_load(export_lm_eval_task(store, "support@0", tmp_path / "tasks").read_text(encoding="utf-8"))
    assert labelled["output_type"] == "multiple_choice" and all(c.startswith(" ") for c in labelled["doc_to_choice"])


# -- reports -----------------------------------------------------------------------------


def _result() -> EvalResult:
    r = EvalResult(model="run-1", dataset="support@3", split="test", kind="sft", n_examples=3, baseline="base (tiny)")
    r.metrics = [
        MetricResult("loss", 0.9, 0.85, 0.95, 3, 6.7, 6.6, 6.8, -5.8, -5.9, -5.7),
        MetricResult("exact_match", 0.67, 0.33, 1.0, 3, 0.0, 0.0, 0.0, 0.67, 0.33, 1.0),
    ]
    r.details["confusion_matrix"] = {"labels": ["ORDER", "REFUND"], "counts": [[1, 0], [1, 1]]}
    r.examples = [
        {"id": "a", "prompt": "Where is <b>my</b> order?", "reference": "order", "prediction": "order", "exact_match": 1.0},
        {"id": "b", "prompt": "Refund please", "reference": "refund", "prediction": "order", "exact_match": 0.0},
        {"id": "c", "prompt": "money back", "reference": "refund", "prediction": "refund", "exact_match": 1.0},
    ]
    r.worst_by = "exact_match"
    return r


class _Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.cells: list[str] = []
        self._in_td = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.ids += [v for k, v in attrs if k == "id" and v]
        self._in_td = tag == "td"

    def handle_data(self, data: str) -> None:
        if self._in_td:
            self.cells.append(data)


def test_report_has_the_metrics_table_verdicts_and_worst_examples_first(tmp_path: Path) -> None:
    result = _result()
    md = render_markdown(result, worst=2)
    assert "| exact_match | 0.67 [0.33, 1] | 0 [0, 0] | 0.67 [0.33, 1] | better |" in md
    assert "| loss | 0.9 [0.85, 0.95] | 6.7 [6.6, 6.8] | -5.8 [-5.9, -5.7] | better |" in md
    assert md.index("### 1. `b`") < md.index("### 2.")  # the wrong answer is shown first
    page = render_html(result, worst=2)
    parser = _Tables()
    parser.feed(page)
    assert {"metrics", "confusion", "worst"} <= set(parser.ids)
    assert "better" in parser.cells
    assert "Where is &lt;b&gt;my&lt;/b&gt; order?" in render_html(result, worst=3)  # user text is escaped
    md_path, html_path = write_report(result, tmp_path)
    assert md_path.name == "support@3.md" and html_path.read_text(encoding="utf-8") == render_html(result)


def test_result_round_trips_through_json(tmp_path: Path) -> None:
    result = _result()
    loaded = EvalResult.load(result.save(tmp_path / "r.json"))
    assert loaded.metric("exact_match").verdict == "better"
    assert loaded.to_dict() == result.to_dict()
    assert result.summary()["metrics"]["loss"]["diff"] == -5.8


def test_pipeline_evaluate_block_needs_a_train_block_and_recipes_accept_one(tmp_path: Path) -> None:
    from curate.config import load_pipeline
    from curate.train.recipe import Recipe

    write_jsonl(tmp_path / "data.jsonl", SUPPORT_ROWS)
    path = write_pipeline(tmp_path)
    path.write_text(path.read_text(encoding="utf-8") + "evaluate:\n  metrics: [loss]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"pipeline.yaml, line \d+.*add a `train:` block or remove `evaluate:`"):
        load_pipeline(path)
    path.write_text(path.read_text(encoding="utf-8") + "train: {model: models/tiny, method: sft}\n", encoding="utf-8")
    assert load_pipeline(path).evaluate.metrics == ["loss"]
    assert Recipe(model="m", evaluate={"metrics": ["exact_match"], "split": "validation"}).evaluate.split == "validation"
