#!/usr/bin/env python
"""Semantic dedup benchmark: curate's ``dedup_semantic`` per encoder on slices of the shared corpus.

    python bench/dedup_semantic.py --data ../shared/bench/dedup/data --work bench/work/semantic \
        --encoder minilm:2000 --encoder onnx:2000 --encoder static:2000 --encoder static:20000 --sweep 0.92,0.95

The slice is whole families of the corpus (a base document with all its injected variants, or a
singleton), drawn with a fixed seed, so removal precision / recall can be scored with the
corpus's ground truth (``common.score``). Prints and writes WORK/results.json, one entry per
``--encoder``: build seconds (distillation / ONNX export, into a fresh store), docs/s end to end,
encoder seconds, and the scores, including recall per variant type (``edit3`` / ``edit8`` word
substitutions are the closest thing to paraphrases this corpus has). Every run starts from an
empty store, so the encoder cost is real; ``--sweep`` thresholds reuse the cached embeddings.

    python bench/dedup_semantic.py --data ../shared/data --work bench/work/partitions --partitions 1,2,4,8,16

``--partitions`` instead measures the partitioned search (k-means partitions, pairs only within one) on
the Bitext support questions and BANKING77 utterances (user turns, ``--rows`` of them; 14,517 in all),
or with ``--data ../shared/bench/dedup/data`` on a ``--rows`` slice of the dedup corpus, with the static
encoder at its default threshold: per partition count, seconds of the k-means and of the search (in
this process, one partition after the other), the largest partition, and the share of the exact
search's pairs and removed rows it finds. Embeddings are computed once (cached in WORK's store).
``--ray 2`` also times each partition's search in Ray tasks (``engine: ray``'s path) on a local 2-CPU cluster.
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

from curate.embeddings import encoder_of
from curate.stages.base import StageContext
from curate.stages.dedup_semantic import DedupSemantic, DedupSemanticConfig
from curate.stats import Phases
from curate.store import Store


def _slice(data: Path, docs: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    gt = pl.read_parquet(data / "ground_truth.parquet")
    families = gt.group_by("family").len().sort("family").sample(fraction=1.0, shuffle=True, seed=seed)
    chosen = families.filter(pl.col("len").cum_sum() <= docs)["family"]
    sub = gt.filter(pl.col("family").is_in(chosen.implode())).sort("id")
    corpus = pl.read_parquet(data / "corpus.parquet", columns=["id", "text"])
    sub = sub.with_columns(new_id=pl.int_range(pl.len()))
    texts = sub.select("id", "new_id").join(corpus, on="id").sort("new_id")
    return texts, sub.with_columns(pl.col("new_id").alias("id")).drop("new_id")


def _frame(texts: pl.DataFrame) -> pl.DataFrame:
    return texts.select(
        pl.col("new_id").cast(pl.String).alias("id"),
        pl.lit("bench").alias("source"),
        pl.lit("{}").alias("meta"),
        pl.concat_list(pl.struct(role=pl.lit("user"), content=pl.col("text"))).alias("messages"),
        pl.lit(None, pl.String).alias("label"),
    )


def _labels(result: object, n: int) -> np.ndarray:
    labels = np.arange(n, dtype=np.int64)
    removed = result.removed.select(
        pl.col("id").cast(pl.Int64), pl.col("detail").str.json_path_match("$.duplicate_of").cast(pl.Int64).alias("of")
    )
    labels[removed["id"].to_numpy()] = removed["of"].to_numpy()
    return labels


def run(data: Path, work: Path, *, encoder: str, docs: int, args: argparse.Namespace, score: object) -> dict:
    """One encoder on one slice: a fresh store (every embedding is real), then a threshold sweep."""
    store = Store(work / f"store-{encoder}-{docs}")
    build_s = None
    if encoder != "minilm" and not args.no_build:  # a real build into an empty folder, timed (the stage uses the user's)
        t = time.perf_counter()
        encoder_of(encoder, models_dir=work / f"build-{encoder}-{docs}")
        build_s = round(time.perf_counter() - t, 2)
    t_all = time.perf_counter()
    texts, gt = _slice(data, docs, args.seed)
    frame = _frame(texts)
    ctx = StageContext(dataset="bench", kind="sft", base_dir=work, store=store, stage_id="dedup_semantic")
    config = DedupSemanticConfig(encoder=encoder, threshold=args.threshold, search=args.search, batch_size=args.batch_size)
    result = DedupSemantic(config).apply(frame, ctx)
    wall = time.perf_counter() - t_all - result.stats["seconds"]["encoder_build"]  # 0 once the user cache has it
    encoder_s = result.stats["seconds"]["embed"]
    out = {
        "encoder": encoder,
        "docs": frame.height,
        "threshold": result.stats["threshold"],
        "search": result.stats["search"],
        "torch_threads": __import__("torch").get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "build_s": build_s,
        "wall_s": round(wall, 2),
        "docs_per_s": round(frame.height / wall, 1),
        "encoder_s": round(encoder_s, 2),
        "encoder_docs_per_s": round(frame.height / encoder_s, 1),
        "stage_seconds": result.stats["seconds"],
        "provenance": result.stats["encoder"],
        **score(_labels(result, frame.height), gt),
        "sweep": {},
    }
    for threshold in args.sweep:  # the embeddings are cached in the store now: only search and clustering rerun
        swept = DedupSemantic(config.model_copy(update={"threshold": threshold})).apply(frame, ctx)
        s = score(_labels(swept, frame.height), gt)
        out["sweep"][threshold] = {k: s[k] for k in ("removal_precision", "removal_recall")} | {
            "recall_by_type": s.get("recall_by_type")
        }
    return out


def _support_rows(data: Path, rows: int) -> pl.DataFrame:
    """Bitext questions then BANKING77 utterances, ``rows`` in all, as an sft frame (user turn + label)."""
    from curate.records import build_frame

    bitext = pl.read_csv(data / "bitext_customer_support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv",
                         infer_schema=False)
    banking = pl.read_csv(data / "banking77" / "train.csv", infer_schema=False)
    texts = pl.concat([bitext.select(text="instruction", label="intent"), banking.select("text", label="category")])
    records = [{"messages": [{"role": "user", "content": t}, {"role": "assistant", "content": "Let me check."}],
                "label": label} for t, label in texts.head(rows).iter_rows()]  # fmt: skip
    return build_frame("sft", records)[0]


def partitions(data: Path, work: Path, args: argparse.Namespace) -> list[dict]:
    """Partitioned vs exact search on the same embeddings, one entry per partition count."""
    if (data / "corpus.parquet").exists():  # the shared dedup corpus: whole documents
        frame = _frame(_slice(data, args.rows, args.seed)[0])
    else:
        frame = _support_rows(data, args.rows)
    store = Store(work / "store")
    ctx = StageContext(dataset="bench", kind="sft", base_dir=work, store=store, stage_id="dedup_semantic")
    config = DedupSemanticConfig(encoder="static", text="user", threshold=args.threshold)
    stage = DedupSemantic(config)
    text, rows = stage.text(frame, "sft")
    t = time.perf_counter()
    vectors = stage.vectors(text.gather(rows).to_list(), cache_dir=store.cache_dir("embeddings"))
    embed_s = time.perf_counter() - t
    out, exact = [], None
    for k in args.partitions:
        staged = DedupSemantic(config.model_copy(update={"partitions": k, "margin": args.margin}))
        result = staged.finish(frame, ctx, text=text, rows=rows, vectors=vectors, phases=Phases())
        on_ray = None
        if args.ray:  # the same partitions, each searched in a Ray task on a local cluster of --ray CPUs
            from curate.engines.ray._semantic import map_partitions

            on_ray = staged.finish(frame, ctx, text=text, rows=rows, vectors=vectors, phases=Phases(),
                                   map_partitions=map_partitions)  # fmt: skip
            assert on_ray.removed.equals(result.removed), "ray and local removed different rows"
        removed = set(result.removed["id"].to_list())
        exact = exact or (result.stats["pairs"], removed)  # the first count is the reference
        seconds = result.stats["seconds"]
        out.append({
            "rows": frame.height, "partitions": result.stats["partitions"],
            "largest": result.stats["largest_partition"],
            "searched_rows": result.stats["searched_rows"], "margin": args.margin,
            "threshold": result.stats["threshold"], "embed_s": round(embed_s, 2),
            "kmeans_s": seconds["partition"], "search_s": seconds["search"],
            "ray_search_s": on_ray and on_ray.stats["seconds"]["search"],
            "pairs": result.stats["pairs"], "pair_recall": round(result.stats["pairs"] / max(exact[0], 1), 4),
            "removed": len(removed), "removed_recall": round(len(removed & exact[1]) / max(len(exact[1]), 1), 4),
            "removed_subset_of_exact": removed <= exact[1],
        })  # fmt: skip
        print(json.dumps(out[-1]), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--encoder", action="append", metavar="NAME[:DOCS]",
                    help="minilm|static|onnx, optionally with its slice size (e.g. minilm:2000); repeat to compare "
                    "encoders in one session (default: static)")  # fmt: skip
    ap.add_argument("--docs", type=int, default=20_000, help="slice size of an --encoder given without one")
    ap.add_argument("--threshold", type=float, default=None, help="default: the encoder's default threshold")
    ap.add_argument("--sweep", type=lambda v: [float(x) for x in v.split(",")], default=[],
                    help="comma-separated thresholds also scored from the same (cached) embeddings")  # fmt: skip
    ap.add_argument("--no-build", action="store_true", help="do not time a fresh build of static / onnx")
    ap.add_argument("--search", default="auto", choices=["auto", "exact", "faiss"])
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--partitions", type=lambda v: [int(x) for x in v.split(",")], default=None,
                    help="comma-separated partition counts, the first one the reference (use 1: exact); --data is "
                    "then the shared data folder (Bitext, BANKING77)")  # fmt: skip
    ap.add_argument("--rows", type=int, default=40_000, help="rows of --partitions (Bitext first, then BANKING77)")
    ap.add_argument("--margin", type=float, default=0.01, help="dedup_semantic's `margin` for --partitions")
    ap.add_argument("--ray", type=int, default=0, metavar="CPUS",
                    help="--partitions also searched in Ray tasks on a local cluster of CPUS workers")  # fmt: skip
    args = ap.parse_args()
    data, work = Path(args.data), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if args.partitions:
        if args.ray:
            import ray

            ray.init(num_cpus=args.ray, include_dashboard=False, log_to_driver=False)
        (work / "partitions.json").write_text(json.dumps(partitions(data, work, args), indent=1))
        return
    sys.path.insert(0, str(data.parent))  # the harness's common.py sits next to its data/ folder
    from common import score

    results = []
    for spec in args.encoder or ["static"]:
        name, _, docs = spec.partition(":")
        out = run(data, work, encoder=name, docs=int(docs) if docs else args.docs, args=args, score=score)
        print(json.dumps(out, indent=1), flush=True)
        results.append(out)
        (work / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
