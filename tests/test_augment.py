"""`augment` on real BANKING77 rows through the pipeline runner and a real store: eda, noise, llm, checks."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import yaml
from pydantic import ValidationError

from curate.pipeline import run_pipeline
from curate.records import record_id
from curate.stages.augment import AugmentConfig
from curate.store import Store

REASONS = {"paraphrase_drift", "paraphrase_too_close", "label_changed", "duplicate", "over_max_per_label"}


def _banking(shared_data: Path, folder: Path, *, intents: int = 8, per_intent: int = 20) -> None:
    rows = pl.read_csv(shared_data / "banking77" / "train.csv")
    keep = sorted(rows["category"].unique().to_list())[:intents]
    rows = rows.filter(pl.col("category").is_in(keep) & (pl.int_range(pl.len()).over("category") < per_intent))
    rows.write_csv(folder / "banking.csv")


def _run(folder: Path, stages: list[dict], *, output: str = "bank", source: str = "banking.csv") -> tuple:
    spec = {"source": {"path": source, "format": "table", "kind": "prompt", "mapping": {"prompt": "text", "label": "category"}},
            "stages": stages, "output": output}  # fmt: skip
    path = folder / f"{output}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    summary = run_pipeline(path, store_root=folder / "store")
    return summary, next((s for s in summary.stages if s.name == "augment"), None)


def _text(prompt: list[dict]) -> str:
    return prompt[0]["content"]


@pytest.fixture(scope="module")
def eda_run(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object, object]:
    folder = tmp_path_factory.mktemp("augment-eda")
    _banking(shared_data, folder)
    summary, stage = _run(folder, [{"split": {"test": 0.1, "validation": 0.1, "seed": 0}}, {"augment": {"n": 2}}])
    return folder, summary, stage


def test_eda_adds_candidates_inside_the_window_and_stores_the_rejected_with_reasons(eda_run: tuple) -> None:
    folder, summary, stage = eda_run
    low, high = AugmentConfig().window
    assert stage.extra["method"] == "eda" and stage.extra["window"] == [low, high]
    kept = Store(folder / "store").kept("bank")
    added = kept.filter(pl.col("augmented_from").is_not_null())
    assert added.height == stage.extra["accepted"] > 0
    assert added["augment_similarity"].is_between(low, high).all()
    source = dict(zip(kept["id"], kept["prompt"].to_list(), strict=True))
    label = dict(zip(kept["id"], kept["label"], strict=True))
    for row in added.iter_rows(named=True):
        assert row["label"] == label[row["augmented_from"]]  # the source's label
        assert _text(row["prompt"]) != _text(source[row["augmented_from"]])
        assert row["id"] == record_id("prompt", row)  # its own content id
    assert kept["id"].n_unique() == kept.height

    table = pl.read_delta(str(folder / "store" / "bank"))
    rejected = table.filter(pl.col("removed_by") == "augment")
    assert rejected.height == stage.rows_removed > 0
    assert set(rejected["reason"]) <= REASONS and "paraphrase_drift" in set(rejected["reason"])
    for row in rejected.iter_rows(named=True):
        detail = json.loads(row["detail"])
        assert detail["source"] == row["augmented_from"] and detail["method"] == "eda"
        assert detail["operation"] in {"synonym", "insert", "swap", "delete"}
        if row["reason"] == "paraphrase_drift":
            assert detail["similarity"] < low
        if row["reason"] == "paraphrase_too_close":
            assert detail["similarity"] > high or detail.get("identical")


def test_eda_never_varies_held_out_rows_and_the_accounting_balances(eda_run: tuple) -> None:
    folder, summary, stage = eda_run
    split = next(s for s in summary.stages if s.name == "split")
    kept = Store(folder / "store").kept("bank")
    split_of = dict(zip(kept["id"], kept["split"], strict=True))
    added = kept.filter(pl.col("augmented_from").is_not_null())
    assert {split_of[s] for s in added["augmented_from"]} == {"train"} and set(added["split"]) == {"train"}
    held_out = kept.filter(pl.col("split") != "train")
    assert held_out.height == split.extra["rows_per_split"]["test"] + split.extra["rows_per_split"]["validation"]
    assert held_out["augmented_from"].is_null().all()
    assert stage.extra["skipped"] == {"held_out": held_out.height}
    assert stage.rows_added == stage.extra["candidates"] == 2 * split.extra["rows_per_split"]["train"]
    assert stage.rows_in + stage.rows_added == stage.rows_kept + stage.rows_removed
    assert stage.rows_kept == stage.rows_in + stage.extra["accepted"] == kept.height


def test_noise_makes_typo_case_punctuation_and_whitespace_variants(shared_data: Path, tmp_path: Path) -> None:
    _banking(shared_data, tmp_path, intents=3, per_intent=10)
    _, stage = _run(tmp_path, [{"augment": {"method": "noise", "n": 4}}])
    assert stage.extra["window"] == list(AugmentConfig(method="noise").window)
    # n = 4 kinds: every row gets one variant of each
    assert {k: v["candidates"] for k, v in stage.extra["per_operation"].items()} == dict.fromkeys(
        ["case", "punctuation", "typo", "whitespace"], stage.rows_in)
    kept = Store(tmp_path / "store").kept("bank")
    source = {i: _text(p) for i, p in zip(kept["id"], kept["prompt"].to_list(), strict=True)}
    pairs = [(source[s], _text(p)) for s, p in zip(kept["augmented_from"], kept["prompt"].to_list(), strict=True) if s]
    assert len(pairs) > stage.rows_in  # most of the 4 variants per row are kept
    assert any(a.lower() == b.lower() and a != b for a, b in pairs)  # casing
    assert any(a.replace("?", "") == b and a != b for a, b in pairs)  # punctuation
    assert any(a.replace(" ", "") == b.replace(" ", "") and a.split() != b.split() for a, b in pairs)  # whitespace
    assert any(len(a) - 1 <= len(b) <= len(a) and a.lower() != b.lower() and len(a.split()) == len(b.split())
               for a, b in pairs)  # typo  # fmt: skip
    casing = kept.filter(pl.col("augment_similarity") >= 0.9999)
    assert casing.height > 0  # the encoder is uncased: a casing variant is a near copy, kept for robustness


def test_sft_rows_vary_the_user_and_the_assistant_turn_and_keep_the_less_similar_score(
    shared_data: Path, tmp_path: Path
) -> None:
    from curate.embeddings import embed

    csv = shared_data / "bitext_customer_support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv"
    pl.read_csv(csv, n_rows=12, infer_schema=False).write_csv(tmp_path / "bitext.csv")
    spec = {"source": {"path": "bitext.csv", "format": "table", "kind": "sft",
                       "mapping": {"user": "instruction", "assistant": "response", "label": "category"}},
            "stages": [{"augment": {"method": "noise", "noise": ["typo"], "n": 1, "fields": ["user", "assistant"]}}],
            "output": "support"}  # fmt: skip
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    run_pipeline(tmp_path / "p.yaml", store_root=tmp_path / "store")
    kept = Store(tmp_path / "store").kept("support")
    by_id = dict(zip(kept["id"], kept["messages"].to_list(), strict=True))
    added = kept.filter(pl.col("augmented_from").is_not_null())
    assert added.height > 6
    for row in added.iter_rows(named=True):
        old, new = by_id[row["augmented_from"]], row["messages"]
        assert [m["role"] for m in new] == [m["role"] for m in old] == ["user", "assistant"]
        assert new[0]["content"] != old[0]["content"] and new[1]["content"] != old[1]["content"]
        vectors = embed([old[0]["content"], new[0]["content"], old[1]["content"], new[1]["content"]])
        expected = min(float(vectors[0] @ vectors[1]), float(vectors[2] @ vectors[3]))
        assert row["augment_similarity"] == pytest.approx(expected, abs=1e-5)


def test_a_candidate_equal_to_another_row_is_a_duplicate(tmp_path: Path) -> None:
    rows = [("How do I top up my card?", "top_up"), ("how do I top up my card", "top_up"), ("Where is my card?", "card")]
    pl.DataFrame({"text": [t for t, _ in rows], "category": [c for _, c in rows]}).write_csv(tmp_path / "rows.csv")
    _, stage = _run(tmp_path, [{"augment": {"method": "noise", "noise": ["punctuation"], "n": 1}}], source="rows.csv")
    table = pl.read_delta(str(tmp_path / "store" / "bank"))
    ids = {_text(p): i for i, p in zip(table["id"], table["prompt"].to_list(), strict=True)}
    dup = table.filter(pl.col("reason") == "duplicate").sort("augmented_from")
    assert stage.removed_by_reason == {"duplicate": 2}
    got = {_text(p)[:-1]: json.loads(d)["duplicate_of"] for p, d in zip(dup["prompt"].to_list(), dup["detail"], strict=True)}
    # the first loses its "?" (an exact duplicate of the second); the second gains one of ?.! (a MinHash duplicate)
    assert got == {"How do I top up my car": ids["how do I top up my card"],
                   "how do I top up my card": ids["How do I top up my card?"]}  # fmt: skip
    added = Store(tmp_path / "store").kept("bank").filter(pl.col("augmented_from").is_not_null())
    assert [_text(p) for p in added["prompt"].to_list()] == ["Where is my card"]


def test_only_labels_and_max_per_label_lift_only_the_rare_label(tmp_path: Path, shared_data: Path) -> None:
    rows = pl.read_csv(shared_data / "banking77" / "train.csv")
    rare = rows.filter(pl.col("category") == "card_arrival").head(4)
    common = rows.filter(pl.col("category") == "card_linking").head(12)
    pl.concat([common, rare]).write_csv(tmp_path / "rows.csv")
    _, capped = _run(tmp_path, [{"augment": {"method": "noise", "n": 4, "max_per_label": 7}}], source="rows.csv", output="capped")
    added = Store(tmp_path / "store").kept("capped").filter(pl.col("augmented_from").is_not_null())
    assert set(added["label"]) == {"card_arrival"} and added.height == 3  # 4 rows + 3 = 7
    # card_arrival needs 3 rows: ceil(2 * 3 / n) = 2 of its 4 rows are varied, the other 2 are not needed
    assert capped.extra["skipped"] == {"at_max_per_label": 12, "not_needed": 2}
    assert capped.rows_in + capped.rows_added == capped.rows_kept + capped.rows_removed

    _, only = _run(tmp_path, [{"augment": {"method": "noise", "n": 2, "only_labels": ["card_arrival"]}}],
                   source="rows.csv", output="only")  # fmt: skip
    added = Store(tmp_path / "store").kept("only").filter(pl.col("augmented_from").is_not_null())
    assert set(added["label"]) == {"card_arrival"} and only.extra["candidates"] == 8
    _, none = _run(tmp_path, [{"augment": {"n": 2, "only_labels": ["no_such_label"]}}], source="rows.csv", output="none")
    assert none.rows_added == 0 and none.rows_kept == none.rows_in == 16


def test_llm_gibberish_from_a_tiny_random_model_is_rejected_as_drift(shared_data: Path, tmp_path: Path, tiny_lm: Path) -> None:
    _banking(shared_data, tmp_path, intents=2, per_intent=6)
    generator = {"model": str(tiny_lm), "sampling": {"max_new_tokens": 12, "batch_size": 12}}
    summary, stage = _run(tmp_path, [{"augment": {"generator": generator, "n": 2}}])
    assert stage.extra["method"] == "llm" and stage.extra["generator"]
    assert stage.rows_added == 24 and stage.removed_by_reason == {"paraphrase_drift": 24}
    assert stage.rows_kept == stage.rows_in == 12  # no row lost, none added
    rejected = pl.read_delta(str(tmp_path / "store" / "bank")).filter(pl.col("removed_by") == "augment")
    assert rejected["augment_similarity"].max() < AugmentConfig(generator=generator).window[0]


def test_a_head_run_rejects_candidates_it_labels_differently(shared_data: Path, tmp_path: Path) -> None:
    from curate.train.export import load_trained
    from curate.train.recipe import Recipe
    from curate.train.runner import train

    _banking(shared_data, tmp_path, intents=5, per_intent=16)
    _run(tmp_path, [{"split": {"validation": 0.15, "seed": 0}}], output="base")
    recipe = Recipe(model="all-MiniLM-L6-v2", method="sft", adapter="head", dataset="base@0",
                    output_dir=str(tmp_path / "runs"), training={"epochs": 20, "batch_size": 32})  # fmt: skip
    run = train(recipe, store=tmp_path / "store")
    stages = [{"augment": {"n": 2, "min_similarity": -1.0, "head": run.path.name, "runs_root": "runs"}}]
    _, stage = _run(tmp_path, stages, source="base@0", output="checked")
    assert stage.removed_by_reason.get("label_changed", 0) > 0 and "paraphrase_drift" not in stage.removed_by_reason
    table = pl.read_delta(str(tmp_path / "store" / "checked"))
    changed = table.filter(pl.col("reason") == "label_changed")
    assert all(json.loads(d)["predicted"] != y for d, y in zip(changed["detail"], changed["label"], strict=True))
    added = Store(tmp_path / "store").kept("checked").filter(pl.col("augmented_from").is_not_null())
    classifier, _ = load_trained(run.path)
    assert classifier.predict([_text(p) for p in added["prompt"].to_list()]) == added["label"].to_list()


def test_a_head_that_is_not_a_run_stops_the_stage_before_any_variant_is_made(tmp_path: Path) -> None:
    from curate.errors import StageError

    pl.DataFrame({"text": ["Where is my card?"], "category": ["card"]}).write_csv(tmp_path / "rows.csv")
    with pytest.raises(StageError, match=r"augment: `head: no-such-run` is not a run: No run or model 'no-such-run'"):
        _run(tmp_path, [{"augment": {"head": "no-such-run"}}], source="rows.csv")
    assert not (tmp_path / "store" / "bank").exists()


def test_eda_without_the_augment_extra_prints_the_install_command(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    pl.DataFrame({"text": ["Where is my card?"], "category": ["card"]}).write_csv(tmp_path / "rows.csv")
    spec = {"source": {"path": "rows.csv", "format": "table", "kind": "prompt", "mapping": {"prompt": "text", "label": "category"}},
            "stages": [{"augment": {"n": 1}}], "output": "bank"}  # fmt: skip
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    code = ("import sys\nsys.modules['wn'] = None\n"  # as in a venv without the extra
            f"sys.argv = ['curate', 'run', {str(tmp_path / 'p.yaml')!r}, '--store', {str(tmp_path / 'store')!r}]\n"
            "from curate.cli import main\nmain()")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "COLUMNS": "250"})
    assert out.returncode == 1, out.stderr[-2000:]
    assert "The `eda` method of the `augment` stage needs the `augment` extra (wn not installed); install it with: " \
           "pip install 'curate[augment]'" in out.stderr  # fmt: skip
    assert "Traceback" not in out.stderr and not (tmp_path / "store" / "bank").exists()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"method": "llm"}, "method `llm` needs a `generator` block"),
        ({"method": "eda", "generator": {"model": "m"}}, "method `eda` uses no model"),
        ({"generator": {"model": "m"}, "prompt": "Paraphrase this"}, "`prompt` must contain `{text}`"),
        ({"min_similarity": 0.9, "max_similarity": 0.8}, r"min_similarity \(0.9\) is above max_similarity \(0.8\)"),
        ({"generator": {"model": "m", "sampling": {"do_sample": False}}}, "greedy decoding"),
        ({"fields": ["user", "user"]}, "lists a turn twice"),
    ],
)
def test_inconsistent_configs_fail_when_the_pipeline_is_loaded(config: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AugmentConfig(**config)
