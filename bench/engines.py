#!/usr/bin/env python
"""Local vs Ray engine on N support documents: wall time, driver and worker peak RSS, same result.

    python bench/engines.py --rows 100000 [--format jsonl|parquet] [--only read,run] [--engines local,ray] --out bench/work/engines

Builds N rows from the Bitext customer-support CSV (../shared/data; each copy after the first
gets a copy number appended to the user turn so `dedup_exact` keeps it while MinHash still
sees near duplicates) as a JSONL (default) or Parquet table read with a mapping, then runs, each
engine in its own process so each driver's peak RSS is its own (`local`, then `ray` on a local
cluster of `--cpus` workers):

- ``read``: only the engine's reading (`Engine.read`: the `convert` step), to see what reading
  alone leaves on the driver;
- ``run``: the pipeline `dedup_exact` + `dedup_minhash` + `quality` + `split`.

Prints one JSON object: per engine and step the wall time, driver peak RSS (up to the end of the
step, before the bench reads the result back), when (seconds from the start) the driver's sampled
RSS peaked, the peak RSS of the largest Ray worker and of all Ray processes together (sampled every
0.2 s), per-stage seconds; and whether both engines read the same rows and removed the same ids
for the same reasons (then MinHash precision and recall are equal).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[1]
BITEXT = REPO.parent / "shared" / "data" / "bitext_customer_support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv"
PIPELINE = """source: {path: docs.FORMAT, format: table, kind: sft, mapping: {user: instruction, assistant: response, label: category}}
stages:
  - dedup_exact: {}
  - dedup_minhash: {}
  - quality: {}
  - split: {test: 0.1, validation: 0.1, stratify_by: label, seed: 0}
output: docs
engine: ENGINE
"""


def build(rows: int, folder: Path, fmt: str) -> Path:
    out = folder / f"docs.{fmt}"
    if out.exists():
        return out
    base = pl.read_csv(BITEXT, infer_schema=False).select("instruction", "response", "category")
    copies = -(-rows // base.height)
    frames = [base.with_columns(instruction=pl.col("instruction") + (f" #{k}" if k else "")) for k in range(copies)]
    folder.mkdir(parents=True, exist_ok=True)
    docs = pl.concat(frames).head(rows)
    docs.write_parquet(out) if fmt == "parquet" else docs.write_ndjson(out)
    return out


class WorkerPeaks:
    """Peak RSS of the largest Ray worker and of all this process's descendants together, sampled;
    and when (seconds from the start) the driver's own sampled RSS peaked."""

    def __init__(self) -> None:
        self.largest = self.total = self.driver = 0
        self.driver_at = 0.0
        self._start = time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.wait(0.2):
            sizes = []
            for child in me.children(recursive=True):
                try:
                    sizes.append(child.memory_info().rss)
                except psutil.Error:
                    continue
            self.largest, self.total = max(self.largest, max(sizes, default=0)), max(self.total, sum(sizes))
            if (rss := me.memory_info().rss) > self.driver:
                self.driver, self.driver_at = rss, time.perf_counter() - self._start

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        return {"largest_worker_peak_rss_gb": round(self.largest / 2**30, 2),
                "all_ray_processes_peak_rss_gb": round(self.total / 2**30, 2),
                "driver_sampled_peak_at_s": round(self.driver_at, 1)}


def _finished(start: float, peaks: WorkerPeaks) -> tuple[float, int, dict]:
    """Wall seconds, the driver's peak RSS (KB) and the sampled peaks, before the result is read back."""
    return time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, peaks.stop()


def one(engine: str, step: str, folder: Path, fmt: str, cpus: int) -> None:
    """Child process: read (or run the pipeline) on one engine and print its numbers."""
    from curate.config import load_pipeline
    from curate.engines import get_engine
    from curate.pipeline import run_pipeline
    from curate.store import Store

    if engine == "ray":
        import ray

        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    peaks = WorkerPeaks()
    pipeline = folder / f"{engine}-{fmt}.yaml"
    pipeline.write_text(PIPELINE.replace("ENGINE", engine).replace("FORMAT", fmt))
    store = Store(folder / f"store-{engine}-{fmt}")
    start = time.perf_counter()
    if step == "read":
        inputs = get_engine(engine).read(load_pipeline(pipeline).sources, base_dir=folder, store=store)
        wall, peak, workers = _finished(start, peaks)
        inputs.valid.select("id", "meta").write_parquet(folder / f"read-{engine}.parquet")
        out = {"rows": inputs.valid.height}
    else:
        summary = run_pipeline(pipeline, store_root=store.root)
        wall, peak, workers = _finished(start, peaks)
        rows = store.read(f"docs@{summary.version}")
        removed = rows.filter(pl.col("removed_by").is_not_null()).select("id", "removed_by", "reason").sort("id", "removed_by")
        removed.write_parquet(folder / f"removed-{engine}.parquet")
        out = {"kept": rows.filter(pl.col("split").is_not_null()).height,
               "stages": {s.stage: {"rows_in": s.rows_in, "seconds": round(s.seconds, 2),
                                    **({"phases": s.extra["seconds"]} if isinstance(s.extra.get("seconds"), dict) else {})}
                          for s in summary.stages}}
    if engine != "ray":
        workers = {"driver_sampled_peak_at_s": workers["driver_sampled_peak_at_s"]}
    print(json.dumps({"engine": engine, "step": step, "wall_s": round(wall, 1), "driver_peak_rss_gb": round(peak / 2**20, 2),
                      **workers, **out}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--format", choices=["jsonl", "parquet"], default="jsonl")
    ap.add_argument("--only", default="read,run", help="steps, comma-separated: read, run")
    ap.add_argument("--engines", default="local,ray", help="engines, comma-separated: local, ray")
    ap.add_argument("--cpus", type=int, default=2, help="Ray workers (local cluster)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "work" / "engines")
    ap.add_argument("--child", nargs=2, metavar=("ENGINE", "STEP"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    folder = args.out / str(args.rows)
    if args.child:
        one(*args.child, folder, args.format, args.cpus)
        return
    build(args.rows, folder, args.format)
    results: dict = {"rows": args.rows, "format": args.format, "ray_cpus": args.cpus}
    for step in args.only.split(","):
        engines = args.engines.split(",")
        for engine in engines:
            cmd = [sys.executable, __file__, "--rows", str(args.rows), "--format", args.format, "--cpus", str(args.cpus),
                   "--out", str(args.out), "--child", engine, step]
            done = subprocess.run(cmd, check=True, capture_output=True, text=True)
            results[f"{step}_{engine}"] = json.loads(done.stdout.strip().splitlines()[-1])
            print(json.dumps(results[f"{step}_{engine}"]), file=sys.stderr)
        same = {"read": "read", "run": "removed"}[step]
        if len(engines) == 2:
            a, b = (pl.read_parquet(folder / f"{same}-{e}.parquet") for e in engines)
            results[f"{step}_same_on_both_engines"] = a.equals(b)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
