"""``dedup_exact`` speed and memory: an earlier version of the stage vs the working tree's.

1. ``speed``: each version's ``apply`` on the same N-row frame, A B A B in one process: wall
   and CPU seconds, rows/s (best of the rounds); every round checks that all versions give the
   same kept and removed rows.
2. ``memory``: the stage's own peak (each version in its own process: the peak RSS during
   ``apply`` minus the RSS with the frame loaded), and ``curate run`` with ``dedup_exact`` + ``split`` at several sizes
   under ``/usr/bin/time -v`` (wall, peak RSS), to show how memory grows with N.

    .venv/bin/python bench/dedup_exact.py --rows 1000000 [--before dcbd79f] [--only speed,memory] [--distinct]

The frame is bench/read_speed.py's messages file (Bitext conversations cycled, a fifth exact
duplicates), read once with curate's reader and cached as Parquet under /tmp.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal
from read_speed import CURATE, PIPELINE, STAGES, build, timed

from curate.config import SourceConfig
from curate.formats.reader import read_source
from curate.stages.base import StageContext
from curate.stages.dedup_exact import DedupExact, DedupExactConfig

ROOT = Path(__file__).resolve().parents[1]
TMP = Path(tempfile.gettempdir())
OPTIONS = [{}, {"lowercase": False}, {"text": "user"}]


def frame_of(rows: int) -> Path:
    """The bench rows as curate reads them, cached as Parquet."""
    cached = TMP / f"bench_dedup_exact_{rows}.parquet"
    if not cached.exists():
        data = build(rows, TMP / f"bench_messages_{rows}.jsonl")
        read_source(SourceConfig(path=str(data)), base_dir=ROOT).valid.write_parquet(cached)
    return cached


def all_distinct(frame: pl.DataFrame) -> pl.DataFrame:
    """Every turn made unique (` #<row>` appended): the worst case for normalising each distinct turn once."""
    turn = pl.col("messages").struct
    rows = frame.with_row_index("row").explode("messages")
    content = turn.field("content") + " #" + pl.col("row").cast(pl.String)
    rows = rows.with_columns(messages=pl.struct(turn.field("role"), content))
    rows = rows.group_by("row", maintain_order=True).agg(pl.all().exclude("messages").first(), pl.col("messages"))
    return rows.select(frame.columns)


def stage_at(rev: str) -> type:
    """The ``DedupExact`` class as it was at git revision ``rev`` (not registered)."""
    show = ["git", "-C", str(ROOT), "show", f"{rev}:curate/stages/dedup_exact.py"]
    source = subprocess.run(show, capture_output=True, text=True, check=True).stdout.replace("@register\n", "")
    namespace: dict = {"__name__": f"dedup_exact_{rev}"}
    exec(compile(source, f"dedup_exact@{rev}", "exec"), namespace)  # noqa: S102 - our own file at an older commit
    return namespace["DedupExact"]


def speed(frame: pl.DataFrame, before: str, rounds: int) -> None:
    ctx = StageContext(dataset="bench", kind="sft", base_dir=ROOT)
    versions = {rev: stage_at(rev) for rev in before.split(",")} | {"working tree": DedupExact}
    for options in OPTIONS:
        best: dict[str, tuple[float, float]] = {}
        for _ in range(rounds):
            results = []
            for name, stage in versions.items():
                start, cpu = time.perf_counter(), time.process_time()
                results.append(stage(DedupExactConfig(**options)).apply(frame, ctx))
                took = (time.perf_counter() - start, time.process_time() - cpu)
                best[name] = min(best.get(name, took), took)
            for result in results[1:]:
                assert_frame_equal(results[0].kept, result.kept)
                assert_frame_equal(results[0].removed, result.removed)
        line = {
            name: {"s": round(wall, 2), "cpu_s": round(cpu, 2), "rows_per_s": round(frame.height / wall)}
            for name, (wall, cpu) in best.items()
        }
        print(json.dumps({"options": options, "removed": results[1].removed.height, **line}), flush=True)


STAGE_PEAK = """
import re, sys, polars as pl
sys.path.insert(0, sys.argv[3])
from dedup_exact import stage_at
from curate.stages.dedup_exact import DedupExact, DedupExactConfig
from curate.stages.base import StageContext

def status(key):
    return int(re.search(key + r":\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) // 1024

frame = pl.read_parquet(sys.argv[1])
stage = DedupExact if sys.argv[2] == "working tree" else stage_at(sys.argv[2])
open("/proc/self/clear_refs", "w").write("5")  # resets the peak (VmHWM) to the current RSS
base = status("VmRSS")
stage(DedupExactConfig()).apply(frame, StageContext(dataset="b", kind="sft", base_dir="."))
print(base, status("VmHWM"))
"""


def memory(rows: int, before: str, sizes: list[int]) -> None:
    for name in (*before.split(","), "working tree"):
        done = subprocess.run(
            [sys.executable, "-c", STAGE_PEAK, str(frame_of(rows)), name, str(ROOT / "bench")],
            capture_output=True, text=True,
        )
        if done.returncode:
            raise SystemExit(f"stage peak of {name} failed:\n{done.stderr[-3000:]}")
        base, peak = map(int, done.stdout.split())
        line = {"stage": name, "rows": rows, "frame_mb": base, "peak_mb": peak, "stage_mb": peak - base}
        print(json.dumps(line), flush=True)
    work = Path(tempfile.mkdtemp(prefix="dedup_exact_"))
    os.environ["COLUMNS"] = "200"  # curate run's table unabridged, so the stage's seconds can be read
    for n in sizes:
        data = build(n, TMP / f"bench_messages_{n}.jsonl")
        pipeline = work / f"exact_{n}.yaml"
        stages = "\n".join(f"  - {s}" for s in STAGES["exact"])
        pipeline.write_text(PIPELINE.format(data=data, stages=stages))
        result = timed(f"exact {n}", [CURATE, "run", str(pipeline), "--store", str(work / f"store_{n}")])
        stage = re.search(r"dedup_exact +\d+ +\d+ +\d+ +\d+ +([\d.]+)", result.pop("stdout"))
        print(json.dumps({**result, "dedup_exact_s": float(stage.group(1)) if stage else None}), flush=True)
    shutil.rmtree(work)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--before", default="dcbd79f", help="git revisions to compare with (comma-separated)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default="250000,500000,1000000", help="rows of the `curate run` memory runs")
    parser.add_argument("--only", default="speed,memory")
    parser.add_argument("--distinct", action="store_true", help="speed on the frame with every turn made unique")
    args = parser.parse_args()
    if "speed" in args.only:
        frame = pl.read_parquet(frame_of(args.rows))
        speed(all_distinct(frame) if args.distinct else frame, args.before, args.rounds)
    if "memory" in args.only:
        memory(args.rows, args.before, [int(n) for n in args.sizes.split(",")])
    print("max RSS of this process MB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)


if __name__ == "__main__":
    main()
