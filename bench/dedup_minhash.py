#!/usr/bin/env python
"""Benchmark adapter for ../shared/bench/dedup/run_bench.py: curate's ``dedup_minhash`` stage end to end.

    ADAPTER --data DIR --work DIR [--ngram 5 --bands 14 --rows 8 --num-perm 112 --verify none]
    ADAPTER --data DIR --work DIR --defaults      # the stage's own defaults instead

Reads DIR/corpus.parquet (id, text), turns every text into a one-turn ``sft`` record (polars,
no Python per row), runs the stage, and writes WORK/labels.npy (cluster label per doc id: the
row index of the kept row) and WORK/timings.json (seconds per phase, plus the stage's stats).
The defaults match the shared numpy reference: word 5-grams, 14 bands x 8 rows = 112 perms.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import polars as pl

from curate.stages.base import StageContext
from curate.stages.dedup_minhash import DedupMinhash, DedupMinhashConfig


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--ngram", type=int, default=5)
    ap.add_argument("--char-ngram", type=int, default=None)
    ap.add_argument("--bands", type=int, default=14)
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--num-perm", type=int, default=None, help="default: bands x rows")
    ap.add_argument("--threshold", type=float, default=0.7)
    ap.add_argument("--verify", default="none", choices=["none", "signature", "jaccard"])
    ap.add_argument(
        "--no-numbers", action="store_true", help="keep numbers as they are (the reference's normalisation)"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--defaults", action="store_true", help="use the stage's own defaults (auto bands/rows)")
    args = ap.parse_args()

    timings: dict[str, object] = {}
    t = time.perf_counter()
    corpus = pl.read_parquet(Path(args.data) / "corpus.parquet", columns=["id", "text"])
    frame = corpus.select(
        pl.col("id").cast(pl.String),
        pl.lit("bench").alias("source"),
        pl.lit("{}").alias("meta"),
        pl.concat_list(pl.struct(role=pl.lit("user"), content=pl.col("text"))).alias("messages"),
        pl.lit(None, pl.String).alias("label"),
    )
    timings["0_read_and_frame"] = time.perf_counter() - t

    if args.defaults:
        config = DedupMinhashConfig(verify=args.verify, numbers=not args.no_numbers, seed=args.seed)
    else:
        config = DedupMinhashConfig(
            ngram=args.ngram,
            char_ngram=args.char_ngram,
            threshold=args.threshold,
            bands=args.bands,
            rows=args.rows,
            num_perm=args.num_perm or args.bands * args.rows,
            verify=args.verify,
            numbers=not args.no_numbers,
            seed=args.seed,
        )
    t = time.perf_counter()
    ctx = StageContext(dataset="bench", kind="sft", base_dir=Path(args.work))
    result = DedupMinhash(config).apply(frame, ctx)
    timings["1_stage_apply"] = time.perf_counter() - t

    t = time.perf_counter()
    ids = corpus["id"].to_numpy()
    labels = np.arange(len(ids), dtype=np.int64)
    labels[ids] = ids  # kept rows are their own cluster; ids are 0..N-1 in the corpus
    removed = result.removed.select(
        pl.col("id").cast(pl.Int64), pl.col("detail").str.json_path_match("$.duplicate_of").cast(pl.Int64).alias("of")
    )
    labels[removed["id"].to_numpy()] = removed["of"].to_numpy()
    np.save(Path(args.work) / "labels.npy", labels)
    timings["2_write_labels"] = time.perf_counter() - t
    timings["config"] = config.model_dump(exclude_none=True)
    timings["stage_stats"] = result.stats
    out = {k: round(v, 3) if isinstance(v, float) else v for k, v in timings.items()}
    (Path(args.work) / "timings.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
