#!/usr/bin/env python
"""``augment`` on BANKING77: throughput (candidates/s) and acceptance per method, and the
measurement behind the default similarity windows.

    python bench/augment.py [--rows 1000] [--n 2] [--reference 3000] [--llm MODEL_DIR] [--out FILE]

Takes ``--rows`` rows of BANKING77's train.csv (seeded, every intent) as train rows, runs the
stage once per method with the window opened to [-1, 1] (so every candidate's similarity is
seen), then reports per similarity bin how often a candidate keeps its intent: the majority
label of its 5 nearest neighbours (MiniLM cosine) among ``--reference`` other BANKING77 rows.
The same kNN on the source rows themselves gives the ceiling. Then the stage runs again with
its default window (embeddings come from the cache) for the acceptance rate and throughput.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from curate.embeddings import embed
from curate.records import record_id
from curate.stages.augment import Augment, AugmentConfig
from curate.stages.base import StageContext
from curate.store import Store

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77" / "train.csv"
BINS = [-1.0, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.98, 1.0001]


def _frame(rows: pl.DataFrame) -> pl.DataFrame:
    prompts = [[{"role": "user", "content": t}] for t in rows["text"]]
    ids = [record_id("prompt", {"prompt": p, "label": y}) for p, y in zip(prompts, rows["category"], strict=True)]
    return pl.DataFrame(
        {"id": ids, "source": "banking77", "meta": "{}", "prompt": prompts, "label": rows["category"],
         "split": pl.Series([None] * rows.height, dtype=pl.String)}
    )  # fmt: skip


def _knn(vectors: np.ndarray, ref: np.ndarray, ref_labels: np.ndarray, k: int = 5) -> np.ndarray:
    top = np.argsort(-(vectors @ ref.T), axis=1)[:, :k]
    out = []
    for row in ref_labels[top]:
        values, counts = np.unique(row, return_counts=True)
        out.append(values[counts.argmax()])
    return np.array(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--n", type=int, default=2)
    ap.add_argument("--reference", type=int, default=3000)
    ap.add_argument("--llm", default=None, help="a model folder or run for the llm method (optional)")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args()
    data = pl.read_csv(DATA).sample(fraction=1.0, shuffle=True, seed=0)
    train, reference = data.head(args.rows), data.slice(args.rows, args.reference)
    frame = _frame(train)
    store = Store(Path(tempfile.mkdtemp(prefix="augment-bench-")))
    cache = store.cache_dir("embeddings")
    ref_vectors = embed(reference["text"].to_list(), cache_dir=cache)
    ref_labels = reference["category"].to_numpy()
    source_vectors = embed(train["text"].to_list(), cache_dir=cache)
    ceiling = float((_knn(source_vectors, ref_vectors, ref_labels) == train["category"].to_numpy()).mean())
    results = {"rows": args.rows, "n": args.n, "knn_ceiling": round(ceiling, 4), "methods": {}}
    methods = ["eda", "noise"] + (["llm"] if args.llm else [])
    for method in methods:
        extra = {"generator": {"model": args.llm}} if method == "llm" else {}
        ctx = StageContext(dataset="bench", kind="prompt", base_dir=Path.cwd(), store=store, stage_id="augment")
        wide = Augment(AugmentConfig(method=method, n=args.n, min_similarity=-1, max_similarity=1, **extra))
        t0 = time.perf_counter()
        open_run = wide.apply(frame, ctx)
        seconds_cold = time.perf_counter() - t0
        cands = pl.concat([open_run.kept.filter(pl.col("augmented_from").is_not_null()), open_run.removed],
                          how="diagonal_relaxed")  # fmt: skip
        texts = [p[0]["content"] for p in cands["prompt"].to_list()]
        predicted = _knn(embed(texts, cache_dir=cache), ref_vectors, ref_labels)
        kept_label = predicted == cands["label"].to_numpy()
        sims = cands["augment_similarity"].to_numpy()
        bins = []
        for lo, hi in zip(BINS, BINS[1:], strict=False):
            inside = (sims >= lo) & (sims < hi)
            if inside.any():
                bins.append({"from": lo, "to": min(hi, 1.0), "candidates": int(inside.sum()),
                             "knn_label_kept": round(float(kept_label[inside].mean()), 4)})  # fmt: skip
        default = Augment(AugmentConfig(method=method, n=args.n, **extra))
        t0 = time.perf_counter()
        run = default.apply(frame, ctx)  # embeddings cached: this time is generation + checks
        seconds_warm = time.perf_counter() - t0
        results["methods"][method] = {
            "candidates": run.added, "accepted": run.stats["accepted"], "acceptance_rate": run.stats["acceptance_rate"],
            "removed_by_reason": dict(run.removed.group_by("reason").len().sort("reason").iter_rows()),
            "window": run.stats["window"], "candidates_per_s_cold": round(run.added / seconds_cold, 1),
            "candidates_per_s_cached_embeddings": round(run.added / seconds_warm, 1),
            "stage_seconds_cold": open_run.stats["seconds"], "similarity_bins": bins,
            "per_operation": run.stats["per_operation"],
            "knn_label_kept_all": round(float(kept_label.mean()), 4),
            "knn_label_kept_accepted": round(float(kept_label[(sims >= run.stats["window"][0])
                                                              & (sims <= run.stats["window"][1])].mean()), 4),
        }  # fmt: skip
        print(json.dumps({method: results["methods"][method]}, indent=1), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
