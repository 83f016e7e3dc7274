"""dedup_minhash on real data: accounting, clusters against brute-force Jaccard, keep policies, determinism."""

from __future__ import annotations

import csv
import itertools
import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from curate.errors import StageError
from curate.records import build_frame
from curate.stages import get_stage
from curate.stages._minhash import MinHasher, jaccard_pairs, shingle_sets
from curate.stages._minhash_lsh import choose_bands
from curate.stages.base import StageContext
from curate.stages.dedup_minhash import DedupMinhash, DedupMinhashConfig

ROLE = {"human": "user", "gpt": "assistant"}


def _fastchat(shared_data: Path) -> pl.DataFrame:
    rows = json.loads((shared_data / "fastchat" / "dummy_conversation.json").read_text())
    records = [
        {"messages": [{"role": ROLE[m["from"]], "content": m["value"]} for m in r["conversations"]], "source": r["id"]}
        for r in rows
    ]
    frame, invalid = build_frame("sft", records)
    assert invalid.height == 0
    return frame


def _banking(shared_data: Path, n: int) -> pl.DataFrame:
    with open(shared_data / "banking77" / "train.csv", newline="") as f:
        rows = list(itertools.islice(csv.DictReader(f), n))
    records = [
        {
            "messages": [{"role": "user", "content": r["text"]}, {"role": "assistant", "content": "ok"}],
            "label": r["category"],
        }
        for r in rows
    ]
    return build_frame("sft", records)[0]


def _run(frame: pl.DataFrame, tmp_path: Path, **config: object):
    ctx = StageContext(dataset="t", kind="sft", base_dir=tmp_path, store=None, stage_id="dedup_minhash")
    return DedupMinhash(DedupMinhashConfig(**config)).apply(frame, ctx)


def _words(text: str) -> list[str]:
    """The stage's documented normalisation, in plain Python."""
    return re.findall(r"\w+", re.sub(r"\d+(?:[.,]\d+)?", "0", text.lower()))


def _jaccard(a: str, b: str, n: int = 5) -> float:
    def grams(words: list[str]) -> set[tuple[str, ...]]:
        return {tuple(words[i : i + n]) for i in range(max(1, len(words) - n + 1))}

    sa, sb = grams(_words(a)), grams(_words(b))
    return len(sa & sb) / len(sa | sb)


def test_minhash_is_registered_and_validates_bands_at_load_time():
    assert get_stage("dedup_minhash") is DedupMinhash
    with pytest.raises(ValidationError, match="set both `bands` and `rows`"):
        DedupMinhashConfig(bands=10)
    with pytest.raises(ValidationError, match="exceeds num_perm"):
        DedupMinhashConfig(bands=20, rows=8, num_perm=128)
    with pytest.raises(ValidationError, match="Extra inputs"):
        DedupMinhashConfig(treshold=0.8)


def test_fastchat_identity_chats_collapse_with_exact_accounting(shared_data, tmp_path):
    frame = _fastchat(shared_data)
    result = _run(frame, tmp_path, ngram=3, threshold=0.6)
    assert result.kept.height + result.removed.height == frame.height == 500
    assert result.removed.height > 250  # heavy near-duplicates
    assert set(result.removed["reason"]) == {"near_duplicate"}
    assert result.kept.columns == frame.columns
    assert sorted(result.kept["id"].to_list() + result.removed["id"].to_list()) == sorted(frame["id"].to_list())
    detail = result.removed["detail"].str.json_decode()
    kept_ids = set(result.kept["id"])
    assert set(detail.struct.field("duplicate_of")) <= kept_ids
    assert detail.struct.field("similarity").is_between(0, 1).all()
    assert result.stats["bands"] * result.stats["rows"] <= 128
    assert 0 < result.stats["s_curve_false_positive"] < 1 and 0 < result.stats["s_curve_false_negative"] < 1


def test_clusters_match_brute_force_jaccard_on_a_sample(shared_data, tmp_path):
    frame = _fastchat(shared_data).head(120)
    texts = ["\n".join(m["content"] for m in msgs) for msgs in frame["messages"].to_list()]
    result = _run(frame, tmp_path, ngram=2, threshold=0.5, num_perm=256, verify="jaccard")
    owner = dict(zip(result.kept["id"], result.kept["id"], strict=True))
    for row in result.removed.iter_rows(named=True):
        owner[row["id"]] = json.loads(row["detail"])["duplicate_of"]
    ids = frame["id"].to_list()
    # every verified edge is a true >= threshold pair, so two rows in different clusters that are
    # far above the threshold would have been joined: check none is split, and every reported
    # similarity equals the exact Jaccard to the kept row
    for i, j in itertools.combinations(range(len(ids)), 2):
        if _jaccard(texts[i], texts[j], 2) >= 0.9:
            assert owner[ids[i]] == owner[ids[j]], (texts[i], texts[j])
    by_id = dict(zip(ids, texts, strict=True))
    for row in result.removed.iter_rows(named=True):
        detail = json.loads(row["detail"])
        assert detail["similarity"] == pytest.approx(
            _jaccard(by_id[row["id"]], by_id[detail["duplicate_of"]], 2), abs=1e-3
        )


def test_exact_jaccard_helper_equals_python_sets(shared_data):
    texts = pl.Series(
        _fastchat(shared_data).head(40)["messages"].list.eval(pl.element().struct.field("content")).list.join("\n")
    )
    hasher = MinHasher(ngram=3, char_ngram=None, num_perm=16, seed=0)
    sets = shingle_sets(hasher, texts)
    a, b = np.triu_indices(len(texts), 1)
    got = jaccard_pairs(sets, a, b, chunk=500)  # small chunks: the chunking is exercised too
    want = [_jaccard(texts[int(i)], texts[int(j)], 3) for i, j in zip(a, b, strict=True)]
    np.testing.assert_allclose(got, want, atol=1e-9)


def test_signature_estimate_tracks_true_jaccard(shared_data):
    frame = _banking(shared_data, 300)
    texts = frame["messages"].list.first().struct.field("content")
    hasher = MinHasher(ngram=1, char_ngram=None, num_perm=256, seed=3)
    sig = hasher.signatures(texts)
    a, b = np.triu_indices(120, 1)
    est = (sig[a] == sig[b]).mean(axis=1)
    true = np.array([_jaccard(texts[int(i)], texts[int(j)], 1) for i, j in zip(a, b, strict=True)])
    assert np.abs(est - true).mean() < 0.02


def test_banking77_texts_equal_after_normalisation_keep_one_row(shared_data, tmp_path):
    frame = _banking(shared_data, 10_003).with_row_index("row")  # ids repeat for whitespace-only differences
    normalised = (
        frame["messages"]
        .list.first()
        .struct.field("content")
        .map_elements(lambda t: " ".join(_words(t)), return_dtype=pl.String)
    )
    duplicates = frame.height - normalised.n_unique()  # e.g. "top-up" vs "top up", "£1" vs "€1"
    result = _run(frame, tmp_path, text="user", threshold=0.9, ngram=2)
    assert result.kept.height + result.removed.height == frame.height
    assert result.removed.height >= duplicates == 31
    kept = normalised.gather(result.kept["row"])
    assert kept.n_unique() == kept.len()


def test_text_choice_compares_only_the_chosen_turns(tmp_path):
    answer = "Please contact our support team at the number on the back of your card and they will help you."
    records = [
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": answer}]}
        for q in ["my card was stolen yesterday evening", "how do I change the address on my account"]
    ]
    frame = build_frame("sft", records)[0]
    assert _run(frame, tmp_path, text="assistant").removed.height == 1  # same canned answer
    assert _run(frame, tmp_path, text="user").removed.height == 0  # different questions


def test_keep_policy_longest_and_numeric_column(tmp_path):
    base = "the quick brown fox jumps over the lazy dog near the river bank today"
    records = [
        {"messages": [{"role": "user", "content": base}, {"role": "assistant", "content": "a"}]},
        {"messages": [{"role": "user", "content": base + " again"}, {"role": "assistant", "content": "a"}]},
        {"messages": [{"role": "user", "content": base + "!"}, {"role": "assistant", "content": "a"}]},
    ]
    frame = build_frame("sft", records)[0].with_columns(score=pl.Series([0.1, 0.2, 0.9]))
    first = _run(frame, tmp_path, text="user", ngram=2, threshold=0.5)
    assert first.kept["id"].to_list() == [frame["id"][0]]
    longest = _run(frame, tmp_path, text="user", ngram=2, threshold=0.5, keep="longest")
    assert longest.kept["id"].to_list() == [frame["id"][1]]
    scored = _run(frame, tmp_path, text="user", ngram=2, threshold=0.5, keep="score")
    assert scored.kept["id"].to_list() == [frame["id"][2]]
    with pytest.raises(StageError, match="keep='quality' names no numeric column"):
        _run(frame, tmp_path, keep="quality")


def test_same_seed_gives_same_kept_ids_and_char_ngrams_work(shared_data, tmp_path):
    frame = _fastchat(shared_data)
    one = _run(frame, tmp_path, seed=7, char_ngram=5, threshold=0.6)
    two = _run(frame.clone(), tmp_path, seed=7, char_ngram=5, threshold=0.6)
    assert one.kept["id"].to_list() == two.kept["id"].to_list()
    assert one.removed.equals(two.removed)
    assert one.removed.height > 250


def test_empty_texts_are_never_duplicates(tmp_path):
    records = [
        {"messages": [{"role": "user", "content": "?!"}, {"role": "assistant", "content": "..."}]} for _ in range(2)
    ]
    records[1]["messages"][1]["content"] = "…"
    frame = build_frame("sft", records)[0]
    assert _run(frame, tmp_path).removed.height == 0


def test_datasketch_index_finds_the_same_pairs_as_numpy_banding(shared_data, tmp_path):
    frame = _fastchat(shared_data).head(200)
    numpy_result = _run(frame, tmp_path, threshold=0.6, ngram=3)
    sketch_result = _run(frame, tmp_path, threshold=0.6, ngram=3, lsh_storage={"type": "dict"})
    assert sketch_result.removed.equals(numpy_result.removed)


def test_auto_bands_follow_datasketch():
    from datasketch.lsh import _optimal_param

    for threshold, num_perm in [(0.7, 128), (0.8, 64), (0.5, 200)]:
        assert choose_bands(threshold, num_perm) == _optimal_param(threshold, num_perm, 0.5, 0.5)
