#!/usr/bin/env python
"""Local vs Ray engine on N support documents: wall time, driver peak RSS, same removals.

    python bench/engines.py --rows 100000 --out bench/work/engines

Builds N rows from the Bitext customer-support CSV (../shared/data; each copy after the first
gets a copy number appended to the user turn so `dedup_exact` keeps it while MinHash still
sees near duplicates), writes them as parquet, and runs one pipeline (`dedup_exact` +
`dedup_minhash` + `quality` + `split`) twice, each engine in its own process so each driver's
peak RSS is its own: `local`, then `ray` on a local cluster of `--cpus` workers. Prints one
JSON object: per engine the wall time, driver peak RSS, per-stage seconds; and whether both
removed the same ids for the same reasons (then MinHash precision and recall are equal).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[1]
BITEXT = REPO.parent / "shared" / "data" / "bitext_customer_support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv"
PIPELINE = """source: {path: docs.parquet, format: table, kind: sft, mapping: {user: instruction, assistant: response, label: category}}
stages:
  - dedup_exact: {}
  - dedup_minhash: {}
  - quality: {}
  - split: {test: 0.1, validation: 0.1, stratify_by: label, seed: 0}
output: docs
engine: ENGINE
"""


def build(rows: int, folder: Path) -> Path:
    base = pl.read_csv(BITEXT, infer_schema=False).select("instruction", "response", "category")
    copies = -(-rows // base.height)
    frames = [base.with_columns(instruction=pl.col("instruction") + (f" #{k}" if k else "")) for k in range(copies)]
    folder.mkdir(parents=True, exist_ok=True)
    pl.concat(frames).head(rows).write_parquet(folder / "docs.parquet")
    return folder / "docs.parquet"


def one(engine: str, folder: Path, cpus: int) -> None:
    """Child process: run the pipeline on one engine and print its numbers."""
    from curate.pipeline import run_pipeline
    from curate.store import Store

    if engine == "ray":
        import ray

        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    pipeline = folder / f"{engine}.yaml"
    pipeline.write_text(PIPELINE.replace("ENGINE", engine))
    start = time.perf_counter()
    summary = run_pipeline(pipeline, store_root=folder / f"store-{engine}")
    wall = time.perf_counter() - start
    rows = Store(folder / f"store-{engine}").read(f"docs@{summary.version}")
    removed = rows.filter(pl.col("removed_by").is_not_null()).select("id", "removed_by", "reason").sort("id", "removed_by")
    removed.write_parquet(folder / f"removed-{engine}.parquet")
    print(json.dumps({
        "engine": engine, "wall_s": round(wall, 1),
        "driver_peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "stages": {s.stage: {"rows_in": s.rows_in, "seconds": round(s.seconds, 2), **({"phases": s.extra["seconds"]}
                             if isinstance(s.extra.get("seconds"), dict) else {})} for s in summary.stages},
        "kept": rows.filter(pl.col("split").is_not_null()).height,
    }))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--cpus", type=int, default=2, help="Ray workers (local cluster)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "work" / "engines")
    ap.add_argument("--child", choices=["local", "ray"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    folder = args.out / str(args.rows)
    if args.child:
        one(args.child, folder, args.cpus)
        return
    build(args.rows, folder)
    results = {}
    for engine in ("local", "ray"):
        cmd = [sys.executable, __file__, "--rows", str(args.rows), "--cpus", str(args.cpus), "--out", str(args.out),
               "--child", engine]
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        results[engine] = json.loads(done.stdout.strip().splitlines()[-1])
    same = pl.read_parquet(folder / "removed-local.parquet").equals(pl.read_parquet(folder / "removed-ray.parquet"))
    print(json.dumps({"rows": args.rows, "ray_cpus": args.cpus, "same_removed_ids_and_reasons": same, **results}, indent=1))


if __name__ == "__main__":
    main()
