"""decontaminate on real data: seeded benchmark items in Bitext support rows, held-out leaks, loaders."""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

import polars as pl
import pytest
from pydantic import ValidationError

from curate import benchmarks
from curate.errors import StageError
from curate.records import build_frame
from curate.stages.base import StageContext
from curate.stages.decontaminate import Decontaminate, DecontaminateConfig
from curate.stages.split import Split, SplitConfig
from curate.store import Store

BITEXT = "bitext_customer_support/Bitext_Sample_Customer_Support_Training_Dataset.csv"


def support_frame(shared: Path, rows: int, extra: list[tuple[str, str]] = ()) -> pl.DataFrame:
    bitext = pl.read_csv(shared / BITEXT, infer_schema=False, n_rows=rows)
    records = [
        {"messages": [{"role": "user", "content": r["instruction"]}, {"role": "assistant", "content": r["response"]}],
         "label": r["intent"]}
        for r in bitext.iter_rows(named=True)
    ]
    records += [{"messages": [{"role": "user", "content": u}, {"role": "assistant", "content": a}], "label": "SEEDED"}
                for u, a in extra]
    frame, invalid = build_frame("sft", records)
    assert invalid.is_empty()
    return frame


def ctx(base: Path, store: Store | None = None) -> StageContext:
    return StageContext(dataset="support", kind="sft", base_dir=base, store=store, stage_id="decontaminate")


@pytest.fixture(scope="module")
def stage(shared_data: Path) -> Decontaminate:
    """One stage object for the module, so the GSM8K / MMLU / TruthfulQA index is built once."""
    return Decontaminate(DecontaminateConfig(against=["gsm8k", "mmlu", "truthfulqa"], benchmarks_dir=str(shared_data)))


def repunctuate(text: str) -> str:
    """Same words, different punctuation and case: commas dropped, '?' -> '!', curly quotes straightened."""
    return text.replace(",", "").replace("?", "!").replace("’", "'").upper()


def test_seeded_benchmark_items_are_removed_naming_their_benchmark(shared_data: Path, stage: Decontaminate) -> None:
    gsm8k = benchmarks.load_builtin("gsm8k", root=shared_data)
    mmlu = benchmarks.load_builtin("mmlu", root=shared_data)
    tqa = benchmarks.load_builtin("truthfulqa", root=shared_data)
    words = pl.col("prompt").str.split(" ").list.len()
    short_mmlu = mmlu.filter(words.is_between(6, 9), pl.col("prompt").is_unique()).row(3, named=True)
    short_tqa = tqa.filter(words.is_between(5, 8)).rows(named=True)[:2]
    seeds = {  # user turn -> (benchmark, item id)
        "Solve this: " + gsm8k["prompt"][5]: ("gsm8k", "test:5"),
        repunctuate(gsm8k["prompt"][11]) + " thanks": ("gsm8k", "test:11"),
        "Explain the answer. " + gsm8k["query"][20].split("\n")[1]: ("gsm8k", "test:20"),  # solution text only
        mmlu["query"][100]: ("mmlu", mmlu["item_id"][100]),
        repunctuate(mmlu["prompt"][2000]): ("mmlu", mmlu["item_id"][2000]),
        f"Quick one: {short_mmlu['prompt']}": ("mmlu", short_mmlu["item_id"]),
        short_tqa[0]["prompt"]: ("truthfulqa", short_tqa[0]["item_id"]),
        "hey, " + repunctuate(short_tqa[1]["prompt"]): ("truthfulqa", short_tqa[1]["item_id"]),
        repunctuate(tqa["prompt"][40]) + " " + tqa["query"][40].split("\n")[1]: ("truthfulqa", "40"),
    }
    frame = support_frame(shared_data, 1500, [(u, "Let me work through it.") for u in seeds])
    result = stage.apply(frame, ctx(shared_data))

    removed = {m[0]["content"]: (r, json.loads(d)) for m, r, d in result.removed.select("messages", "reason", "detail").iter_rows()}
    assert set(removed) == set(seeds), "exactly the seeded rows are removed; every support row survives"
    for user, (bench, item_id) in seeds.items():
        reason, detail = removed[user]
        assert reason in ("benchmark_ngram_overlap", "benchmark_exact_match", "benchmark_contains_item")
        assert (detail["benchmark"], detail["item_id"]) == (bench, item_id), user
        assert detail["ngram"] and detail["n"] == len(detail["ngram"].split())
    assert removed[short_tqa[0]["prompt"]][0] == "benchmark_exact_match"
    assert removed[f"Quick one: {short_mmlu['prompt']}"][0] == "benchmark_contains_item"
    assert removed["Solve this: " + gsm8k["prompt"][5]][0] == "benchmark_ngram_overlap"
    assert result.kept.height + result.removed.height == frame.height
    assert result.stats["removed_per_benchmark"] == {"gsm8k": 3, "mmlu": 3, "truthfulqa": 3}


def lm_eval_ngrams(text: str, n: int = 13) -> set[tuple[str, ...]]:
    """lm-eval-harness normalisation, written independently of the stage."""
    words = text.lower().translate(str.maketrans("", "", string.punctuation)).split()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def test_heldout_split_shares_no_13gram_with_train_after_the_stage(shared_data: Path) -> None:
    frame = support_frame(shared_data, 1200)
    base = ctx(shared_data)
    split = Split(SplitConfig(test=0.1, validation=0.1, seed=1)).apply(frame, base).kept
    stage = Decontaminate(DecontaminateConfig(heldout_text="all"))
    result = stage.apply(split, base)

    def grams(rows: pl.DataFrame) -> set:  # turn by turn: n-grams never run across two messages
        out = set()
        for messages in rows["messages"].to_list():
            for m in messages:
                out |= lm_eval_ngrams(m["content"])
        return out

    kept = result.kept
    heldout = grams(kept.filter(pl.col("split").is_in(["validation", "test"])))
    train_rows = kept.filter(pl.col("split") == "train")
    assert train_rows.height > 0
    assert grams(train_rows).isdisjoint(heldout)
    assert set(result.removed["reason"]) <= {"heldout_ngram_overlap", "heldout_exact_match", "heldout_contains_item"}
    assert set(result.removed["split"]) == {"train"}, "only train rows are removed; held-out rows stay"
    detail = json.loads(result.removed["detail"][0])
    heldout_ids = set(split.filter(pl.col("split") != "train")["id"])
    assert detail["split"] in ("validation", "test") and detail["heldout_id"] in heldout_ids
    assert detail["ngram"] and result.stats["heldout"]["train_rows_removed"] == result.removed.height


def test_default_heldout_check_compares_user_turns(shared_data: Path) -> None:
    frame = support_frame(shared_data, 600)
    base = ctx(shared_data)
    split = Split(SplitConfig(seed=2)).apply(frame, base).kept
    result = Decontaminate(DecontaminateConfig()).apply(split, base)
    held = set().union(*(lm_eval_ngrams(m[0]["content"]) for m in result.kept.filter(pl.col("split") != "train")["messages"]))
    train = set().union(*(lm_eval_ngrams(m[0]["content"]) for m in result.kept.filter(pl.col("split") == "train")["messages"]))
    assert held.isdisjoint(train)


def test_rows_without_split_are_only_checked_against_benchmarks(shared_data: Path, stage: Decontaminate) -> None:
    frame = support_frame(shared_data, 300).with_columns(split=pl.lit(None, pl.String))
    result = stage.apply(frame, ctx(shared_data))
    assert result.removed.is_empty()
    assert result.stats["heldout"] == {"checked": False, "why": "no train or no held-out rows"}


def test_ngrams_found_in_more_than_k_rows_are_ignored(shared_data: Path, tmp_path: Path) -> None:
    item = {"q": "The quick brown fox jumps over the lazy dog while the cat sleeps on the warm mat", "id": "x1"}
    path = tmp_path / "bench.jsonl"
    path.write_text(json.dumps(item) + "\n")
    seeded = [(item["q"] + f" (copy {i})", "ok") for i in range(3)]
    frame = support_frame(shared_data, 50, seeded)
    against = [{"path": str(path), "name": "toy", "fields": ["q"], "id_field": "id"}]
    strict = Decontaminate(DecontaminateConfig(against=against, max_train_rows=None)).apply(frame, ctx(tmp_path))
    assert strict.removed.height == 3
    assert {json.loads(d)["benchmark"] for d in strict.removed["detail"]} == {"toy"}
    assert {json.loads(d)["item_id"] for d in strict.removed["detail"]} == {"x1"}
    lenient = Decontaminate(DecontaminateConfig(against=against, max_train_rows=2)).apply(frame, ctx(tmp_path))
    assert lenient.removed.is_empty() and lenient.stats["ignored_frequent_ngrams"] > 0


def test_index_is_cached_and_reused_by_a_new_stage(shared_data: Path, tmp_path: Path) -> None:
    store = Store(tmp_path)
    config = DecontaminateConfig(against=["gsm8k", "mt_bench"], benchmarks_dir=str(shared_data))
    first = Decontaminate(config)
    assert first.index(ctx(shared_data, store))[1]["origin"] == "built"
    assert first.index(ctx(shared_data, store))[1]["origin"] == "memory"
    again, info = Decontaminate(config).index(ctx(shared_data, store))
    assert info["origin"] == "cache"
    assert info["benchmarks"] == {"gsm8k": {"items": 1319, "ngram": 13}, "mt_bench": {"items": 80, "ngram": 13}}


def test_adaptive_ngram_is_clipped_fifth_percentile() -> None:
    from curate.stages._decontam_index import choose_ngram

    assert choose_ngram(pl.Series(range(1, 101)).to_numpy(), ngram=13, min_ngram=8, adaptive=True) == 8
    assert choose_ngram(pl.Series([10] * 50).to_numpy(), ngram=13, min_ngram=8, adaptive=True) == 10
    assert choose_ngram(pl.Series([40] * 50).to_numpy(), ngram=13, min_ngram=8, adaptive=True) == 13
    assert choose_ngram(pl.Series([10] * 50).to_numpy(), ngram=13, min_ngram=8, adaptive=False) == 13


def test_builtin_loaders_read_every_benchmark(shared_data: Path) -> None:
    sizes = {name: benchmarks.load_builtin(name, root=shared_data).height for name in benchmarks.BUILTIN_BENCHMARKS}
    assert sizes == {"gsm8k": 1319, "humaneval": 164, "mmlu": 14042 + 285, "truthfulqa": 817, "hellaswag": 10042,
                     "mt_bench": 80}


def test_unknown_benchmark_name_fails_when_the_config_loads() -> None:
    with pytest.raises(ValidationError, match=re.escape("unknown benchmark 'gsm9k'")):
        DecontaminateConfig(against=["gsm9k"])
    with pytest.raises(ValidationError, match="min_ngram"):
        DecontaminateConfig(ngram=6)


def test_missing_benchmarks_folder_names_the_fix(tmp_path: Path) -> None:
    from curate.errors import InputError

    stage = Decontaminate(DecontaminateConfig(against=["gsm8k"], benchmarks_dir=str(tmp_path)))
    with pytest.raises(InputError, match="CURATE_BENCHMARKS"):
        stage.index(ctx(tmp_path))


def test_embedding_check_catches_a_paraphrased_item(shared_data: Path, tmp_path: Path) -> None:
    paraphrase = "Write a lively travel blog entry about a recent Hawaii trip, covering cultural experiences and top sights."
    frame = support_frame(shared_data, 20, [(paraphrase, "Aloha!")])
    config = DecontaminateConfig(against=["mt_bench"], benchmarks_dir=str(shared_data), embedding_threshold=0.8)
    result = Decontaminate(config).apply(frame, ctx(shared_data, Store(tmp_path)))
    assert result.removed["reason"].to_list() == ["benchmark_embedding_similar"]
    detail = json.loads(result.removed["detail"][0])
    assert (detail["benchmark"], detail["item_id"]) == ("mt_bench", "81") and detail["similarity"] >= 0.8


def test_missing_benchmarks_can_be_skipped_and_are_listed_in_stats(tmp_path: Path) -> None:
    frame = build_frame("sft", [{"messages": [{"role": "user", "content": "Where is my order?"},
                                              {"role": "assistant", "content": "It ships today."}]}])[0]
    ctx = StageContext(dataset="s", kind="sft", base_dir=tmp_path, benchmarks_dir=tmp_path / "empty")
    skip = DecontaminateConfig.model_validate({"against": ["gsm8k", "missing.jsonl"], "missing_benchmarks": "skip"})
    result = Decontaminate(skip).apply(frame, ctx)
    assert result.kept.height == 1
    assert result.stats["index"]["skipped"] == ["gsm8k", "missing.jsonl"]
    strict = DecontaminateConfig.model_validate({"against": ["missing.jsonl"]})
    with pytest.raises(StageError, match="missing.jsonl does not exist"):
        Decontaminate(strict).apply(frame, ctx)


def banking_frame(shared: Path, rows: slice, extra: list[str] = ()) -> pl.DataFrame:
    """BANKING77 utterances (short banking questions) as user turns, plus ``extra`` ones."""
    texts = pl.read_csv(shared / "banking77" / "train.csv", infer_schema=False)["text"].to_list()[rows] + list(extra)
    records = [{"messages": [{"role": "user", "content": t}, {"role": "assistant", "content": "Let me check."}]} for t in texts]
    return build_frame("sft", records)[0]


def removed_reasons(result) -> dict[str, str]:
    return {m[0]["content"]: r for m, r in result.removed.select("messages", "reason").iter_rows()}


def test_a_row_containing_a_short_item_is_not_called_an_exact_match(shared_data: Path, tmp_path: Path) -> None:
    path = tmp_path / "faq.jsonl"
    path.write_text(json.dumps({"q": "What is the exchange rate?"}) + "\n")
    against = [{"path": str(path), "name": "faq", "fields": ["q"]}]
    contains, copy = "what is the exchange rate when i get cash", "WHAT IS THE EXCHANGE RATE!"
    frame = banking_frame(shared_data, slice(7000, 9000), [copy])
    assert contains in {m[0]["content"] for m in frame["messages"]}

    result = Decontaminate(DecontaminateConfig(against=against)).apply(frame, ctx(tmp_path))
    assert removed_reasons(result) == {copy: "benchmark_exact_match"}, "common banking phrasing is not a leak"

    every_match = DecontaminateConfig(against=against, min_rare_words=0, near_copy=0)
    reasons = removed_reasons(Decontaminate(every_match).apply(frame, ctx(tmp_path)))
    assert reasons[contains] == "benchmark_contains_item" and reasons[copy] == "benchmark_exact_match"


def test_a_common_phrase_ngram_does_not_remove_an_unrelated_question(shared_data: Path, tmp_path: Path) -> None:
    banking = pl.read_csv(shared_data / "banking77" / "train.csv", infer_schema=False)
    held = banking.slice(6000, 3000).filter(pl.col("text") != "I tried to make a transfer and it didn't work.")
    assert "I tried to make a transfer and it failed." in held["text"].to_list()
    path = tmp_path / "heldout.jsonl"
    held.select(q="text").write_ndjson(path)
    against = [{"path": str(path), "name": "banking_heldout", "fields": ["q"]}]
    long_item = next(t for t in held["text"].to_list() if len(t.split()) >= 25)
    twelve = next(t for t in held["text"].to_list() if len(t.split()) == 12).split()
    unrelated, exact = "I tried to make a transfer and it didn't work.", held["text"][7].upper() + "!!"
    near = "Hi, " + long_item
    edited = " ".join([*twelve[:-1], "pls"])  # one word of a 12-word item changed: a near copy
    frame = banking_frame(shared_data, slice(3000, 6000), [unrelated, exact, near, edited])

    stage = Decontaminate(DecontaminateConfig(against=against))
    result = stage.apply(frame, ctx(tmp_path))
    assert stage.index(ctx(tmp_path))[1]["benchmarks"]["banking_heldout"]["ngram"] == 8  # short items: adaptive 8-grams
    reasons = removed_reasons(result)
    assert unrelated not in reasons, "sharing 'i tried to make a transfer and it' is not a leak"
    assert reasons[exact] == "benchmark_exact_match" and reasons[near] == "benchmark_ngram_overlap"
    assert reasons[edited] == "benchmark_ngram_overlap"
    details = {m[0]["content"]: json.loads(d) for m, d in result.removed.select("messages", "detail").iter_rows()}
    assert details[edited]["why"] == "near_copy" and details[near]["why"] == "run"
    assert result.removed.height < 0.02 * frame.height  # the old default removed about 6 %

    every_match = Decontaminate(DecontaminateConfig(against=against, near_copy=0, min_rare_words=0))
    assert removed_reasons(every_match.apply(frame, ctx(tmp_path)))[unrelated] == "benchmark_ngram_overlap"


def test_a_short_heldout_row_copied_into_train_is_an_exact_leak(shared_data: Path) -> None:
    copies = ["Can I get a card if I live in the US?", "can i get a card, if i live in the us"]
    frame = banking_frame(shared_data, slice(0, 400), copies)
    split = frame.with_columns(split=pl.when(pl.int_range(pl.len()) == 400).then(pl.lit("test")).otherwise(pl.lit("train")))
    result = Decontaminate(DecontaminateConfig()).apply(split, ctx(shared_data))
    assert removed_reasons(result) == {"can i get a card, if i live in the us": "heldout_exact_match"}
    detail = json.loads(result.removed["detail"][0])
    assert detail["split"] == "test" and detail["heldout_id"] == split["id"][400]
