#!/usr/bin/env python
"""Semantic dedup benchmark: curate's ``dedup_semantic`` on a 20k-document slice of the shared corpus.

    python bench/dedup_semantic.py --data ../shared/bench/dedup/data --work bench/work/semantic [--docs 20000]

The slice is whole families of the corpus (a base document with all its injected variants, or a
singleton), drawn with a fixed seed, so removal precision / recall can be scored with the
corpus's ground truth (``common.score``). Prints and writes WORK/result.json: docs/s end to end,
seconds in the encoder vs. outside it (neighbour search, clustering, frame work), and the scores,
including recall per variant type (``edit3`` / ``edit8`` word substitutions are the closest
thing to paraphrases this corpus has). No embedding cache is used, so the encoder cost is real.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

from curate.stages.base import StageContext
from curate.stages.dedup_semantic import DedupSemantic, DedupSemanticConfig


def _slice(data: Path, docs: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    gt = pl.read_parquet(data / "ground_truth.parquet")
    families = gt.group_by("family").len().sort("family").sample(fraction=1.0, shuffle=True, seed=seed)
    chosen = families.filter(pl.col("len").cum_sum() <= docs)["family"]
    sub = gt.filter(pl.col("family").is_in(chosen.implode())).sort("id")
    corpus = pl.read_parquet(data / "corpus.parquet", columns=["id", "text"])
    sub = sub.with_columns(new_id=pl.int_range(pl.len()))
    texts = sub.select("id", "new_id").join(corpus, on="id").sort("new_id")
    return texts, sub.with_columns(pl.col("new_id").alias("id")).drop("new_id")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--docs", type=int, default=20_000)
    ap.add_argument("--threshold", type=float, default=0.92)
    ap.add_argument("--search", default="auto", choices=["auto", "exact", "faiss"])
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    data, work = Path(args.data), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(data.parent))  # the harness's common.py sits next to its data/ folder
    from common import score

    t_all = time.perf_counter()
    texts, gt = _slice(data, args.docs, args.seed)
    frame = texts.select(
        pl.col("new_id").cast(pl.String).alias("id"),
        pl.lit("bench").alias("source"),
        pl.lit("{}").alias("meta"),
        pl.concat_list(pl.struct(role=pl.lit("user"), content=pl.col("text"))).alias("messages"),
        pl.lit(None, pl.String).alias("label"),
    )
    config = DedupSemanticConfig(threshold=args.threshold, search=args.search, batch_size=args.batch_size, cache=False)
    t = time.perf_counter()
    result = DedupSemantic(config).apply(frame, StageContext(dataset="bench", kind="sft", base_dir=work))
    stage_s = time.perf_counter() - t
    labels = np.arange(frame.height, dtype=np.int64)
    removed = result.removed.select(
        pl.col("id").cast(pl.Int64), pl.col("detail").str.json_path_match("$.duplicate_of").cast(pl.Int64).alias("of")
    )
    labels[removed["id"].to_numpy()] = removed["of"].to_numpy()
    wall = time.perf_counter() - t_all
    encoder_s = result.stats["seconds"]["embed"]
    out = {
        "docs": frame.height,
        "threshold": args.threshold,
        "search": result.stats["search"],
        "torch_threads": __import__("torch").get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "wall_s": round(wall, 2),
        "stage_s": round(stage_s, 2),
        "docs_per_s": round(frame.height / wall, 1),
        "encoder_s": round(encoder_s, 2),
        "outside_encoder_share": round(1 - encoder_s / wall, 4),
        "stage_seconds": result.stats["seconds"],
        **score(labels, gt),
    }
    print(json.dumps(out, indent=1))
    (work / "result.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
