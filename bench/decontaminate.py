#!/usr/bin/env python
"""Speed of the ``decontaminate`` stage: 100k training rows against every benchmark in shared/data.

    python bench/decontaminate.py [--data ../shared/data] [--rows 100000] [--work bench/work/decontaminate]

Training rows are real support / instruction conversations from shared/data (Bitext, BANKING77,
Alpaca demo, HH-RLHF chosen dialogues), cycled up to ``--rows``, plus 300 seeded benchmark items
(100 each from GSM8K, MMLU and TruthfulQA, verbatim inside a user turn). Phases timed:

1. ``index_build``: load the six built-in benchmarks and build the n-gram index (cold);
2. ``index_from_cache``: a fresh stage object reads the cached index from the work folder;
3. ``probe``: the stage's ``apply`` on the rows with the index in memory (the number the
   30 s target is about);
4. ``probe_with_heldout``: the same after ``split`` (10 % test, 10 % validation), so the
   train / held-out check runs too.

Prints one JSON object with the seconds, the rows removed per reason and the seeded recall.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import polars as pl

from curate import benchmarks
from curate.stages.base import StageContext
from curate.stages.decontaminate import Decontaminate, DecontaminateConfig
from curate.stages.split import Split, SplitConfig


class _Cache:
    """Stands in for the store: only ``cache_dir`` is used by the stage."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def cache_dir(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path


def _conversation(user: pl.Expr, assistant: pl.Expr) -> pl.Expr:
    return pl.concat_list(
        pl.struct(role=pl.lit("user"), content=user), pl.struct(role=pl.lit("assistant"), content=assistant)
    ).alias("messages")


def training_rows(data: Path, rows: int) -> pl.DataFrame:
    """Real conversations cycled to ``rows``, then 300 seeded benchmark items."""
    bitext = pl.read_csv(data / "bitext_customer_support/Bitext_Sample_Customer_Support_Training_Dataset.csv",
                         infer_schema=False).select(_conversation(pl.col("instruction"), pl.col("response")))
    banking = pl.read_csv(data / "banking77/train.csv", infer_schema=False).select(
        _conversation(pl.col("text"), pl.lit("I can help with that: ") + pl.col("category")))
    alpaca = pl.read_json(data / "llamafactory_demo/alpaca_en_demo.json").select(
        _conversation(pl.concat_str("instruction", "input", separator="\n"), pl.col("output")))
    hh = pl.read_ndjson(data / "hh_rlhf/test.jsonl.gz").select(
        _conversation(pl.col("chosen").str.extract(r"Human: ([\s\S]*?)\n\nAssistant:"), pl.col("chosen")))
    pool = pl.concat([bitext, banking, alpaca, hh])
    base = pool.select(pl.all().gather(pl.int_range(rows - 300) % pool.height))
    seeds = pl.concat(
        [benchmarks.load_builtin(name, root=data).sample(100, seed=0) for name in ("gsm8k", "mmlu", "truthfulqa")]
    )
    seeded = seeds.select(_conversation("Question: " + pl.col("prompt"), pl.lit("Let me think.")))
    out = pl.concat([base, seeded]).with_row_index("n")
    return out.select(
        id=pl.col("n").cast(pl.String), source=pl.lit("bench"), meta=pl.lit("{}"), messages="messages",
        label=pl.lit(None, pl.String),
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--work", default=str(Path(__file__).resolve().parent / "work" / "decontaminate"))
    args = ap.parse_args()
    data, work = Path(args.data), Path(args.work)
    cache = _Cache(work)
    for old in work.glob("decontaminate/*"):
        old.unlink()
    frame = training_rows(data, args.rows)
    config = DecontaminateConfig(against=list(benchmarks.BUILTIN_BENCHMARKS), benchmarks_dir=str(data))
    ctx = StageContext(dataset="bench", kind="sft", base_dir=work, store=cache, stage_id="decontaminate")
    timings = {}

    stage = Decontaminate(config)
    t = time.perf_counter()
    stage.index(ctx)
    timings["index_build"] = time.perf_counter() - t
    t = time.perf_counter()
    Decontaminate(config).index(ctx)
    timings["index_from_cache"] = time.perf_counter() - t
    t = time.perf_counter()
    result = stage.apply(frame, ctx)
    timings["probe"] = time.perf_counter() - t

    split = Split(SplitConfig(stratify_by=None)).apply(frame, ctx).kept
    t = time.perf_counter()
    with_heldout = stage.apply(split, ctx)
    timings["probe_with_heldout"] = time.perf_counter() - t

    seeded = result.removed.filter(pl.col("id").cast(pl.Int64) >= args.rows - 300)
    seed_of = (pl.col("id").cast(pl.Int64) - (args.rows - 300)) // 100  # 100 seeds each, in this order
    per_benchmark = {name: seeded.filter(seed_of == k).height for k, name in enumerate(("gsm8k", "mmlu", "truthfulqa"))}
    report = {
        "rows": frame.height,
        "threads": {"polars": pl.thread_pool_size(), "cpus": os.cpu_count()},
        "seconds": {k: round(v, 2) for k, v in timings.items()},
        "removed": dict(result.removed["reason"].value_counts().iter_rows()),
        "removed_with_heldout": dict(with_heldout.removed["reason"].value_counts().iter_rows()),
        "seeded_recall": f"{seeded.height}/300",
        "seeded_recall_per_benchmark": {name: f"{found}/100" for name, found in per_benchmark.items()},
        "index": result.stats["index"],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
