"""dedup_semantic and the embedding cache on real BANKING77 utterances (a few hundred, bundled MiniLM)."""

from __future__ import annotations

import csv
import itertools
import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from helpers import write_jsonl, write_pipeline

from curate import _encoders
from curate.config import load_pipeline
from curate.embeddings import ENCODERS, default_model, embed
from curate.errors import ConfigError
from curate.pipeline import run_pipeline
from curate.records import build_frame
from curate.stages import get_stage
from curate.stages._dedup_clusters import clusters
from curate.stages._similar_pairs import exact_pairs, ivf_pairs
from curate.stages.base import StageContext
from curate.stages.dedup_semantic import PARTITION_ROWS, THRESHOLDS, DedupSemantic, DedupSemanticConfig
from curate.store import Store

N = 300


@pytest.fixture(scope="module")
def banking(shared_data: Path) -> pl.DataFrame:
    """The first 300 BANKING77 utterances (card_arrival, card_linking, ...: many paraphrases) plus one exact copy."""
    with open(shared_data / "banking77" / "train.csv", newline="") as f:
        rows = list(itertools.islice(csv.DictReader(f), N))
    rows.append(dict(rows[5], category="copy"))  # same text, different label -> different id
    records = [
        {
            "messages": [{"role": "user", "content": r["text"]}, {"role": "assistant", "content": "Let me check."}],
            "label": r["category"],
        }
        for r in rows
    ]
    return build_frame("sft", records)[0].with_row_index("row")


@pytest.fixture(scope="module")
def vectors(banking: pl.DataFrame) -> np.ndarray:
    return embed(banking["messages"].list.first().struct.field("content").to_list())


def _run(frame: pl.DataFrame, tmp_path: Path, store: Store | None = None, **config: object):
    ctx = StageContext(dataset="t", kind="sft", base_dir=tmp_path, store=store, stage_id="dedup_semantic")
    return DedupSemantic(DedupSemanticConfig(**config)).apply(frame, ctx)


def test_semantic_is_registered_with_the_static_encoder_of_the_bundled_model_by_default():
    assert get_stage("dedup_semantic") is DedupSemantic
    assert DedupSemanticConfig().model is None and DedupSemanticConfig().encoder == "static"
    assert Path(default_model()).is_dir()


@pytest.mark.parametrize("encoder", ENCODERS)
def test_clusters_equal_brute_force_cosine_components(banking, encoders, encoder, tmp_path):
    vectors = embed(banking["messages"].list.first().struct.field("content").to_list(), encoder=encoder)
    threshold = THRESHOLDS[encoder]  # the encoder's own default: cosines differ between encoders
    result = _run(banking, tmp_path, text="user", encoder=encoder)
    assert result.stats["encoder"] == encoders[encoder].provenance and result.stats["threshold"] == threshold
    assert 0 < result.removed.height < banking.height
    assert result.kept.height + result.removed.height == banking.height
    assert set(result.removed["reason"]) == {"semantic_duplicate"}
    sims = vectors @ vectors.T
    i, j = np.nonzero(np.triu(sims >= threshold, 1))
    labels = clusters(banking.height, np.stack([i, j], axis=1))
    # one kept row per brute-force component, the earliest one
    first_of_component = {int(c): int(np.flatnonzero(labels == c)[0]) for c in np.unique(labels)}
    assert sorted(result.kept["row"].to_list()) == sorted(first_of_component.values())
    for row in result.removed.iter_rows(named=True):
        detail = json.loads(row["detail"])
        kept_row = first_of_component[int(labels[row["row"]])]
        assert detail["duplicate_of"] == banking["id"][kept_row]
        assert detail["similarity"] == pytest.approx(float(sims[row["row"], kept_row]), abs=1e-3)


@pytest.mark.parametrize("encoder", ENCODERS)
def test_exact_copy_is_removed_at_a_strict_threshold(banking, encoders, encoder, tmp_path):
    result = _run(banking, tmp_path, text="user", threshold=0.999, encoder=encoder)
    copy = banking.filter(pl.col("label") == "copy")["row"][0]
    assert copy in result.removed["row"].to_list()
    assert json.loads(result.removed.filter(pl.col("row") == copy)["detail"][0])["duplicate_of"] == banking["id"][5]


def test_faiss_search_finds_the_exact_pairs_on_a_small_sample(vectors):
    exact, _ = exact_pairs(vectors, 0.8, block=64)
    approx, sims = ivf_pairs(vectors, 0.8, nprobe=1_000, seed=0)  # every cell probed: exhaustive
    assert {tuple(p) for p in approx.tolist()} == {tuple(p) for p in exact.tolist()}
    assert (sims >= 0.8 - 1e-6).all()


def test_keep_policy_uses_a_numeric_column(banking, tmp_path):
    scored = banking.with_columns(score=pl.col("row").cast(pl.Float64))  # later rows score higher
    result = _run(scored, tmp_path, text="user", threshold=0.9, keep="score", search="faiss", nprobe=64)
    for row in result.removed.iter_rows(named=True):
        kept_id = json.loads(row["detail"])["duplicate_of"]
        assert scored.filter(pl.col("id") == kept_id)["row"].max() > row["row"]


def test_embeddings_are_cached_in_the_store_and_reused(banking, vectors, tmp_path, monkeypatch):
    store = Store(tmp_path / "store")
    first = _run(banking, tmp_path, store=store, text="user", threshold=0.9, encoder="minilm")
    shards = list(store.cache_dir("embeddings").rglob("*.npz"))
    assert len(shards) == 1

    def no_model(*args: object, **kwargs: object) -> None:
        raise AssertionError("the encoder was loaded although every text is cached")

    monkeypatch.setattr(_encoders, "_weights", no_model)
    second = _run(banking, tmp_path, store=store, text="user", threshold=0.9, encoder="minilm")
    assert second.removed.equals(first.removed)
    cached = embed(
        banking["messages"].list.first().struct.field("content").to_list(), cache_dir=store.cache_dir("embeddings")
    )
    np.testing.assert_allclose(cached, vectors, atol=1e-6)


def test_new_texts_extend_the_cache_without_re_embedding_old_ones(tmp_path):
    cache = tmp_path / "cache"
    a = embed(["where is my card", "my card has not arrived"], cache_dir=cache)
    b = embed(["my card has not arrived", "I want to close my account", "where is my card"], cache_dir=cache)
    np.testing.assert_allclose(b[[0, 2]], a[[1, 0]], atol=1e-6)
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    assert len(list(cache.rglob("*.npz"))) == 2


def test_the_encoder_provenance_is_in_the_versions_lineage(encoders, tmp_path, store_root):
    rows = [{"instruction": t, "response": "Let me check.", "category": "card"}
            for t in ("where is my card", "where is my card?", "I want to close my account")]  # fmt: skip
    write_jsonl(tmp_path / "data.jsonl", rows)
    run_pipeline(write_pipeline(tmp_path, stages="  - dedup_semantic: {text: user}\n"), store_root=store_root)
    (stage,) = [s for s in Store(store_root).info("support@0").stages if s.stage == "dedup_semantic"]
    assert stage.extra["encoder"] == encoders["static"].provenance
    assert stage.extra["encoder"]["pca_dims"] == 256 and stage.extra["threshold"] == THRESHOLDS["static"]


# Partitioned search (SemDeDup): k-means partitions, pairs searched only within one.


@pytest.fixture(scope="module")
def banking3000(shared_data: Path) -> pl.DataFrame:
    """3,000 BANKING77 utterances: enough paraphrases for partitions to split some duplicate pairs."""
    with open(shared_data / "banking77" / "train.csv", newline="") as f:
        rows = list(itertools.islice(csv.DictReader(f), 3000))
    records = [{"messages": [{"role": "user", "content": r["text"]}, {"role": "assistant", "content": "Let me check."}],
                "label": r["category"]} for r in rows]  # fmt: skip
    return build_frame("sft", records)[0]


def test_one_partition_removes_what_the_exact_search_over_every_pair_removes(banking, vectors, tmp_path):
    result = _run(banking, tmp_path, text="user", threshold=0.9, partitions=1, search="exact", encoder="minilm")
    assert (result.stats["partitions"], result.stats["largest_partition"]) == (1, banking.height)
    i, j = np.nonzero(np.triu(vectors @ vectors.T >= 0.9, 1))
    labels = clusters(banking.height, np.stack([i, j], axis=1))
    kept = sorted(int(np.flatnonzero(labels == c)[0]) for c in np.unique(labels))  # earliest row per component
    assert sorted(result.kept["row"].to_list()) == kept


def test_partitions_auto_searches_small_inputs_in_one_partition(banking, tmp_path):
    result = _run(banking, tmp_path, text="user", threshold=0.9)
    assert result.stats["partitions"] == 1 and result.stats["search"] == "exact"
    stage = DedupSemantic(DedupSemanticConfig(exact_max_rows=1000))
    assert [stage.partition_count(n) for n in (1000, 1001)] == [1, math.ceil(1001 / PARTITION_ROWS)]


def test_partitioned_search_removes_a_subset_of_the_exact_removals_with_a_stated_recall(banking3000, tmp_path):
    exact = _run(banking3000, tmp_path, text="user", threshold=0.9, partitions=1)
    border = _run(banking3000, tmp_path, text="user", threshold=0.9, partitions=8)  # margin 0.01: border rows twice
    semdedup = _run(banking3000, tmp_path, text="user", threshold=0.9, partitions=8, margin=0.0)
    assert border.stats["partitions"] == 8 and border.stats["largest_partition"] < banking3000.height / 2
    assert semdedup.stats["searched_rows"] == banking3000.height < border.stats["searched_rows"]
    removed = [set(r.removed["id"]) for r in (semdedup, border, exact)]
    assert len(removed[2]) > 1000
    assert removed[0] <= removed[1] <= removed[2]  # pairs within a partition are exact pairs; a margin only adds rows
    assert len(removed[0]) / len(removed[2]) > 0.93  # measured 0.959 (docs/dedup.md)
    assert len(removed[1]) / len(removed[2]) > 0.96  # measured 0.981
    again = _run(banking3000, tmp_path, text="user", threshold=0.9, partitions=8)
    assert again.removed.equals(border.removed)  # the seeded k-means gives the same partitions


@pytest.mark.parametrize(("value", "problem"), [("0", "greater than or equal to 1"), ("many", "'auto'")])
def test_partitions_are_checked_when_the_pipeline_is_loaded(tmp_path, value, problem):
    path = tmp_path / "p.yaml"
    path.write_text(f"source: {{path: d.jsonl}}\nstages:\n  - dedup_semantic: {{partitions: {value}}}\noutput: s\n")
    with pytest.raises(ConfigError, match=rf"p\.yaml, line 3, stages\[0\]\.dedup_semantic\.partitions.*{problem}"):
        load_pipeline(path)
