"""Reading speed on the local engine: a bare polars script vs `curate run`, and each reader's two paths.

Builds N-row inputs from the Bitext support conversations under /tmp (never in the repo), then
times, each as its own process under ``/usr/bin/time -v`` (wall, peak RSS):

1. ``bare``: polars ``read_ndjson`` of the ``messages`` JSONL, the normalised conversation text,
   exact duplicates by hash;
2. ``exact``: ``curate run`` with ``dedup_exact`` + ``split``;
3. ``four``: ``curate run`` with ``dedup_exact`` + ``dedup_minhash`` + ``quality`` + ``split``;
4. ``read:FORMAT:PATH``: ``read_source`` alone on one input, ``PATH`` ``rows`` (the row path,
   ``read_source_rows``) or ``batch`` (the streaming batch path). FORMAT is ``messages`` (the
   JSONL above), ``alpaca`` (JSONL: instruction, input, output, category, intent), ``dirty`` (that
   alpaca JSONL with every hundredth ``output`` null: 1% of rows invalid, spread evenly) or
   ``table`` (the Bitext CSV's columns, mapping user/assistant/label; the rest goes to meta).

    .venv/bin/python bench/read_speed.py --rows 1000000 [--only bare,exact,four]
    .venv/bin/python bench/read_speed.py --rows 200000 --only read:alpaca:rows,read:alpaca:batch,read:table:rows,read:table:batch

Rows repeat the 4,514 Bitext conversations; every repeat after the first gets a copy number in
its user turn, except every fifth row, so about a fifth of the file is exact duplicates.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
BITEXT = ROOT.parent / "shared/data/bitext_customer_support/Bitext_Sample_Customer_Support_Training_Dataset.csv"
CURATE = str(Path(sys.executable).with_name("curate"))

BARE = """
import sys, polars as pl
frame = pl.read_ndjson(sys.argv[1])
turn = pl.element().struct.field("role") + ": " + pl.element().struct.field("content")
text = pl.col("messages").list.eval(turn).list.join("\\n").str.replace_all(r"\\s+", " ").str.strip_chars().str.to_lowercase()
keyed = frame.select(key=text.hash())
print("rows", frame.height, "duplicates", keyed.height - keyed["key"].n_unique())
"""

PIPELINE = """
name: bench
source: {{path: {data}}}
stages:
{stages}
output: bench
"""
STAGES = {
    "exact": ["dedup_exact: {}", "split: {test: 0.1, seed: 0}"],
    "four": ["dedup_exact: {}", "dedup_minhash: {}", "quality: {}", "split: {test: 0.1, seed: 0}"],
}


READ = """
import json, sys, time
from pathlib import Path
from curate.config import SourceConfig
from curate.formats.reader import read_source, read_source_rows
source = SourceConfig(**json.loads(sys.argv[2]))
start = time.perf_counter()
rows = (read_source if sys.argv[1] == "batch" else read_source_rows)(source, base_dir=Path("/"))
seconds = time.perf_counter() - start
n = rows.valid.height + rows.invalid.height
print(json.dumps({"rows": n, "invalid": rows.invalid.height, "read_s": round(seconds, 1), "rows_per_s": round(n / seconds)}))
"""
MAPPING = {"user": "instruction", "assistant": "response", "label": "category"}


def _bitext_rows(rows: int) -> pl.DataFrame:
    """``rows`` Bitext rows, every column, the user turn numbered on repeats (see the module docstring)."""
    table = pl.read_csv(BITEXT, infer_schema=False)
    n = table.height
    frame = pl.DataFrame({"i": range(rows)}).with_columns(j=pl.col("i") % n, copy=pl.col("i") // n)
    frame = frame.join(table.with_row_index("j").with_columns(pl.col("j").cast(pl.Int64)), on="j").sort("i")
    user = pl.when((pl.col("copy") == 0) | (pl.col("i") % 5 == 0)).then(pl.col("instruction"))
    user = user.otherwise(pl.col("instruction") + " (copy " + pl.col("copy").cast(pl.String) + ")")
    return frame.with_columns(instruction=user).select(table.columns)


def build(rows: int, out: Path, *, format: str = "messages") -> Path:
    """The bench file of ``format``: ``rows`` rows cycling through Bitext, copies numbered."""
    if out.exists():
        return out
    frame = _bitext_rows(rows)
    if format == "table":
        frame.write_csv(out)
    elif format in ("alpaca", "dirty"):
        output = pl.col("response")
        if format == "dirty":
            output = pl.when(pl.int_range(pl.len()) % 100 == 50).then(None).otherwise(output)
        columns = {"input": pl.lit(""), "output": output, "category": "category", "intent": "intent"}
        frame.select("instruction", **columns).write_ndjson(out)
    else:
        messages = pl.concat_list(
            pl.struct(role=pl.lit("user"), content=pl.col("instruction")),
            pl.struct(role=pl.lit("assistant"), content=pl.col("response")),
        )
        frame.select(messages=messages).write_ndjson(out)
    return out


def timed(name: str, command: list[str]) -> dict:
    """Wall seconds and peak RSS (MB) of one process, from GNU time."""
    done = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", done.stderr)
    hours, minutes, seconds = (float(g) if g else 0.0 for g in wall.groups())
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    return {"run": name, "wall_s": round(hours * 3600 + minutes * 60 + seconds, 1), "peak_rss_mb": rss // 1024,
            "stdout": done.stdout[-1500:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--only", default="bare,exact,four")
    args = parser.parse_args()
    names = args.only.split(",")
    data = build(args.rows, Path(tempfile.gettempdir()) / f"bench_messages_{args.rows}.jsonl")
    print(f"{data}: {data.stat().st_size / 1e6:.0f} MB, {args.rows} rows", flush=True)
    work = Path(tempfile.mkdtemp(prefix="read_speed_"))
    for name in names:
        if name.startswith("read:"):
            _, format, path = name.split(":")
            suffix = "csv" if format == "table" else "jsonl"
            file = build(args.rows, Path(tempfile.gettempdir()) / f"bench_{format}_{args.rows}.{suffix}", format=format)
            source = {"path": str(file), **({"mapping": MAPPING} if format == "table" else {})}
            result = timed(name, [sys.executable, "-c", READ, path, json.dumps(source)])
        elif name == "bare":
            script = work / "bare.py"
            script.write_text(BARE)
            result = timed(name, [sys.executable, str(script), str(data)])
        else:
            pipeline = work / f"{name}.yaml"
            stages = "\n".join(f"  - {s}" for s in STAGES[name])
            pipeline.write_text(PIPELINE.format(data=data, stages=stages))
            result = timed(name, [CURATE, "run", str(pipeline), "--store", str(work / f"store_{name}")])
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
