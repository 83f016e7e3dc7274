"""The HTML dataset report of the flagship version, opened in headless Chromium, and the dataset card."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
import yaml

from curate import plots
from curate.report import dataset_card, dataset_report, write_dataset_report
from curate.report.card import size_category
from curate.store import Store

from helpers import headless_chromium
from lm_fixtures import reply_adapters  # noqa: F401 - two tiny LoRA runs (~5 s)

needs_chromium = pytest.mark.skipif(
    not (shutil.which("chromium") and shutil.which("chromedriver")),
    reason="Debian chromium + chromium-driver are not installed (.ci/run installs them)",
)


@pytest.fixture(scope="module")
def report_html(flagship_store: Store, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset_report(flagship_store, "support@0", tmp_path_factory.mktemp("report") / "support.html")


@pytest.mark.slow
@needs_chromium
def test_flagship_report_loads_offline_with_plots_and_no_console_errors(report_html: Path, tmp_path: Path) -> None:
    driver = headless_chromium(tmp_path / "profile", logs=True)
    try:
        driver.get("about:blank")
        driver.get_log("performance")  # drop the start page's own requests
        driver.get(report_html.as_uri())
        assert driver.execute_script("return document.readyState") == "complete"
        svgs = driver.find_elements("css selector", "section figure svg")
        sections = [e.get_attribute("id") for e in driver.find_elements("css selector", "section")]
        console = driver.get_log("browser")
        events = [json.loads(e["message"])["message"] for e in driver.get_log("performance")]
        requested = {e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"}
        resources = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        driver.set_window_size(1400, driver.execute_script("return document.body.scrollHeight"))
        driver.save_screenshot(str(tmp_path / "report.png"))
    finally:
        driver.quit()
    assert [m for m in console if m["level"] in ("SEVERE", "WARNING")] == []
    assert requested == {report_html.as_uri()}
    assert resources == []
    assert len(svgs) >= 8
    assert sections == ["summary", "funnel", "labels", "lengths", "duplicates", "decontamination", "quality", "lineage", "seconds"]
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_report_shows_clusters_hits_and_lineage_from_the_version(flagship_store: Store, report_html: Path) -> None:
    page = report_html.read_text(encoding="utf-8")
    rows = flagship_store.read("support@0")
    lineage = flagship_store.info("support@0").lineage
    for stage in ("dedup_exact", "dedup_minhash", "dedup_semantic"):
        clusters = rows.filter(pl.col("removed_by") == stage)["detail"].str.json_path_match("$.duplicate_of").n_unique()
        assert f"{stage}: {clusters} clusters" in page
    assert "similarity 0.9" in page
    assert lineage["pipeline"]["sha256"] in page
    assert lineage["inputs"][0]["sha256"] in page
    decontaminated = rows.filter(pl.col("removed_by") == "decontaminate")
    assert f"{decontaminated.height} hits" in page
    ngram = decontaminated["detail"].str.json_path_match("$.ngram")[0]
    assert ngram in page
    assert "placeholder_leak" in page and "Seconds per stage" in page


def test_report_escapes_text_from_the_data(tmp_path: Path) -> None:
    from helpers import write_jsonl, write_pipeline
    from curate.pipeline import run_pipeline

    rows = [{"instruction": "<script>alert(1)</script> where is my order?", "response": "It ships <b>today</b>.", "category": "<i>ORDER</i>"},
            {"instruction": "<script>alert(1)</script> where is my order?", "response": "It ships <b>today</b>.", "category": "<i>ORDER</i>"}]  # fmt: skip
    write_jsonl(tmp_path / "data.jsonl", rows)
    run_pipeline(write_pipeline(tmp_path, stages="  - dedup_exact: {}\n"), store_root=tmp_path / "store")
    page = dataset_report(Store(tmp_path / "store"), "support")
    assert "<script>" not in page and "<i>ORDER" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; where is my order?" in page


def test_card_front_matter_parses_as_yaml_with_the_hub_fields(flagship_store: Store) -> None:
    card = dataset_card(flagship_store, "support@0", license="cc-by-4.0")
    _, front, body = card.split("---\n", 2)
    meta = yaml.safe_load(front)
    kept = flagship_store.kept("support@0")
    assert meta["license"] == "cc-by-4.0"
    assert meta["task_categories"] == ["text-generation"]
    assert meta["size_categories"] == [size_category(kept.height)] == ["1K<n<10K"]
    assert meta["configs"] == [{"config_name": "default", "data_files": [
        {"split": s, "path": f"data/{s}-*.parquet"} for s in ("train", "validation", "test")]}]  # fmt: skip
    assert "# support@0" in body and "| dedup_exact |" in body


def test_card_license_defaults_to_other(flagship_store: Store) -> None:
    assert yaml.safe_load(dataset_card(flagship_store, "support@0").split("---\n")[1])["license"] == "other"


def test_plots_are_inline_svg_with_nothing_to_fetch() -> None:
    charts = [
        plots.bar_chart({"read": 10, "kept": 7}, title="<funnel>"),
        plots.histograms({"kept": [1, 2, 3], "removed": [], "other": [5.0]}),
        plots.grouped_bars(["a", "b"], {"base": [0.5, 0.6], "tuned": [0.7, float("nan")]}, errors={"base": ([0.4, 0.5], [0.6, 0.7])}),
    ]
    for svg in charts:
        assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
        assert "<image" not in svg and "@font-face" not in svg and "xlink:href=\"http" not in svg
    assert "&lt;funnel&gt;" in charts[0]


def _eval_result(run: Path | None) -> "EvalResult":
    from curate.evaluate.results import EvalResult, MetricResult

    metrics = [
        MetricResult(name="exact_match", value=0.62, low=0.55, high=0.69, n=100, baseline=0.41, baseline_low=0.33,
                     baseline_high=0.49, diff=0.21, diff_low=0.12, diff_high=0.3),
        MetricResult(name="perplexity", value=7.5, low=7.1, high=7.9, n=100, baseline=9.2, baseline_low=8.8,
                     baseline_high=9.6, diff=-1.7, diff_low=-2.0, diff_high=-1.4),
    ]  # fmt: skip
    return EvalResult(model="tuned <run>", dataset="support@0", split="test", kind="sft", n_examples=100,
                      baseline="base", run=str(run) if run else None, metrics=metrics)  # fmt: skip


def test_eval_report_plots_model_and_baseline_per_metric_with_intervals() -> None:
    from curate.evaluate.report import render_html

    page = render_html(_eval_result(None))
    plots_html = page[page.index('<div id="plots">') :]
    assert plots_html.count("<svg") == 2  # exact_match alone in [0, 1]; perplexity on its own scale
    assert "exact_match (95% bootstrap interval)" in plots_html and "perplexity (95% bootstrap interval)" in plots_html
    assert "tuned &lt;run&gt;" in plots_html and "Loss during training" not in page


def test_eval_report_draws_the_runs_training_loss_curve(reply_adapters, tmp_path: Path) -> None:
    from curate.evaluate._loss_history import loss_curves
    from curate.evaluate.report import render_html
    from curate.runs import read_manifest

    run = reply_adapters.runs_root / reply_adapters.runs["alpha"]
    losses = read_manifest(run)["metrics"]["train_loss_history"]
    assert loss_curves(run) == {"train loss": ([10, 20, 30, 40], losses)}  # logging_steps 10, max_steps 40
    page = render_html(_eval_result(run))
    assert "Loss during training" in page and page.count("<svg") == 3


def test_report_card_and_show_html_commands_write_their_files(flagship_store: Store, tmp_path: Path) -> None:
    import subprocess
    import sys

    curate = str(Path(sys.executable).with_name("curate"))
    store = ["--store", str(flagship_store.root)]
    subprocess.run([curate, "datasets", "report", "support@0", "-o", str(tmp_path / "r.html"), *store], check=True, capture_output=True)
    subprocess.run([curate, "datasets", "show", "support@0", "--html", str(tmp_path / "s.html"), *store], check=True, capture_output=True)
    card = subprocess.run([curate, "datasets", "card", "support@0", "--license", "mit", *store], check=True, capture_output=True, text=True)
    assert (tmp_path / "r.html").read_text(encoding="utf-8") == (tmp_path / "s.html").read_text(encoding="utf-8")
    assert yaml.safe_load(card.stdout.split("---\n")[1])["license"] == "mit"


def test_loss_curves_follow_the_trainer_log_history_of_the_last_checkpoint(tiny_lm: Path, tmp_path: Path) -> None:
    from curate.evaluate._loss_history import loss_curves
    from curate.pipeline import run_pipeline
    from curate.train.recipe import Recipe
    from curate.train.runner import train

    questions = [f"question number {i} about my order" for i in range(40)]
    rows = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": "it ships today"}]} for q in questions]
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    spec = {"source": {"path": "qa.jsonl"}, "stages": [{"split": {"test": 0.0, "validation": 0.25, "seed": 0}}], "output": "qa"}
    (tmp_path / "qa.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    run_pipeline(tmp_path / "qa.yaml", store_root=tmp_path / "store")
    training = {"max_steps": 20, "batch_size": 8, "max_length": 32, "learning_rate": 1e-2, "logging_steps": 5,
                "eval_strategy": "steps", "eval_steps": 10, "save_strategy": "steps", "save_steps": 20}  # fmt: skip
    recipe = Recipe.model_validate({"model": str(tiny_lm), "method": "sft", "adapter": "lora", "dataset": "qa",
                                    "name": "qa", "output_dir": str(tmp_path / "runs"), "training": training})  # fmt: skip
    run = train(recipe, store=tmp_path / "store").path
    state = json.loads(next(run.glob("checkpoints/checkpoint-20/trainer_state.json")).read_text())
    curves = loss_curves(run)
    assert curves["train loss"] == ([5, 10, 15, 20], [h["loss"] for h in state["log_history"] if "loss" in h])
    assert curves["validation loss"] == ([10, 20], [h["eval_validation_loss"] for h in state["log_history"] if "eval_validation_loss" in h])
