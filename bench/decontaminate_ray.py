#!/usr/bin/env python
"""``decontaminate`` on the local engine vs ``engine: ray``: the stage's seconds side by side, same result.

    python bench/decontaminate_ray.py [--data ../shared/data] [--rows 100000] [--cpus 2] [--rounds 2]

The rows of bench/decontaminate.py (real conversations plus 300 seeded benchmark items), split 80 /
10 / 10 so the held-out check runs too, against every built-in benchmark. The index is built once
(in memory) and a first Ray run starts the workers; then local (``apply`` in this process) and ray
(``RayEngine.run_stage`` on a local cluster of ``--cpus`` workers) alternate ``--rounds`` times.
Prints one JSON object: each run's seconds, the Ray blocks, and whether both removed the same rows
with the same reasons and details.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import polars as pl
import ray

from curate import benchmarks
from curate.engines.ray import RayEngine
from curate.stages.base import StageContext
from curate.stages.decontaminate import Decontaminate, DecontaminateConfig
from curate.stages.split import Split, SplitConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from decontaminate import training_rows  # noqa: E402  (bench/decontaminate.py)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    data = Path(args.data)
    ctx = StageContext(dataset="bench", kind="sft", base_dir=data, store=None, stage_id="decontaminate")
    frame = Split(SplitConfig(stratify_by=None)).apply(training_rows(data, args.rows), ctx).kept
    stage = Decontaminate(DecontaminateConfig(against=list(benchmarks.BUILTIN_BENCHMARKS), benchmarks_dir=str(data)))
    stage.index(ctx)
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    engine = RayEngine()
    engine.run_stage(stage, frame.head(5_000), ctx)  # workers started, imports done
    seconds: dict[str, list[float]] = {"local": [], "ray": []}
    results = {}
    for _ in range(args.rounds):
        for name in ("local", "ray"):
            start = time.perf_counter()
            results[name] = stage.apply(frame, ctx) if name == "local" else engine.run_stage(stage, frame, ctx)[0]
            seconds[name].append(round(time.perf_counter() - start, 2))
    local, on_ray = results["local"], results["ray"]
    print(json.dumps({
        "rows": frame.height, "cpus": args.cpus, "seconds": seconds, "ray_blocks": on_ray.stats.get("ray_blocks"),
        "removed": local.removed.height,
        "same_removed": local.removed.select("id", "reason", "detail").equals(on_ray.removed.select("id", "reason", "detail")),
        "polars_threads": pl.thread_pool_size(),
    }, indent=1))


if __name__ == "__main__":
    main()
