"""Both dedup stages through the real runner and Delta store on Bitext support rows."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

from helpers import write_jsonl, write_pipeline

from curate.pipeline import run_pipeline
from curate.store import Store

STAGES = (
    "  - dedup_minhash: {ngram: 3, threshold: 0.6, text: assistant, keep: longest}\n"
    "  - dedup_semantic: {threshold: 0.95, text: user}\n"
    "  - split: {test: 0.1, validation: 0.1, stratify_by: label, seed: 0}\n"
)


def _bitext(shared_data: Path, n: int) -> list[dict[str, str]]:
    path = shared_data / "bitext_customer_support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv"
    with open(path, newline="", encoding="utf-8") as f:
        return [
            {"instruction": r["instruction"], "response": r["response"], "category": r["category"]}
            for r in itertools.islice(csv.DictReader(f), n)
        ]


def test_pipeline_records_every_removed_row_and_reuses_cached_embeddings(shared_data, tmp_path, store_root):
    write_jsonl(tmp_path / "data.jsonl", _bitext(shared_data, 200))
    pipeline = write_pipeline(tmp_path, stages=STAGES)
    first = run_pipeline(pipeline, store_root=store_root)
    by_stage = {s.stage: s for s in first.stages}
    for stage in ("dedup_minhash", "dedup_semantic"):
        assert by_stage[stage].balanced
    minhash, semantic = by_stage["dedup_minhash"], by_stage["dedup_semantic"]
    assert set(minhash.removed_by_reason) <= {"near_duplicate"} and set(semantic.removed_by_reason) <= {
        "semantic_duplicate"
    }
    assert minhash.rows_removed + semantic.rows_removed > 0
    assert {"bands", "rows", "s_curve_false_positive", "s_curve_false_negative"} <= set(minhash.extra)

    store = Store(store_root)
    shards = sorted(store.cache_dir("embeddings").rglob("*.npz"))
    assert len(shards) == 1
    second = run_pipeline(pipeline, store_root=store_root)
    assert sorted(store.cache_dir("embeddings").rglob("*.npz")) == shards  # every text came from the cache
    assert [s.rows_removed for s in second.stages] == [s.rows_removed for s in first.stages]

    rows = store.read("support")
    assert rows.height == 200
    removed = rows.filter(rows["removed_by"].is_in(["dedup_minhash", "dedup_semantic"]))
    assert removed.height == minhash.rows_removed + semantic.rows_removed
    for detail in removed["detail"]:  # the kept row a duplicate points to is stored in the same version
        assert json.loads(detail)["duplicate_of"] in set(rows["id"])
