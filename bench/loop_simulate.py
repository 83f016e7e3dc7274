#!/usr/bin/env python
"""``curate loop simulate`` on BANKING77 with the MiniLM head: accuracy per round for each strategy,
and the labels margin / entropy sampling need to reach random sampling's full-budget accuracy.

    python bench/loop_simulate.py [--pool 5000] [--test 2000] [--initial 300] [--budget 300] [--rounds 4]
                                  [--seeds 3] [--learning-rate LR] [--out bench/work/loop_simulate]

Writes a simulation file like pipelines/sim-banking.yaml under ``--out`` (test rows held out from
BANKING77's train.csv, then a stratified pool), runs it through the library (the embedding cache
lives under ``--out``, so a second run skips encoding), and prints the summary plus a JSON line
with the mean curves. Results in docs/loop.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import yaml
from rich.console import Console

from curate.loop._sim_report import summarize
from curate.loop.simulate import STRATEGIES, simulate

MAPPING = {"user": "text", "assistant": "category", "label": "category"}
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77" / "train.csv"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pool", type=int, default=5000)
    ap.add_argument("--test", type=int, default=2000)
    ap.add_argument("--initial", type=int, default=300)
    ap.add_argument("--budget", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=float, default=30)
    ap.add_argument("--learning-rate", type=float, default=None, help="head learning rate; default 1e-3")
    ap.add_argument("--strategies", default=",".join(s for s in STRATEGIES if s != "novelty"))
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "work" / "loop_simulate")
    args = ap.parse_args()

    training = {"epochs": args.epochs, "batch_size": 32}
    if args.learning_rate is not None:
        training["learning_rate"] = args.learning_rate
    sim = {
        "name": "banking_bench",
        "pool": {"path": str(DATA), "format": "table", "mapping": MAPPING},
        "test_size": args.test,
        "pool_size": args.pool,
        "recipe": {"model": "all-MiniLM-L6-v2", "method": "sft", "adapter": "head", "training": training},
        "strategies": args.strategies.split(","),
        "initial": args.initial,
        "budget": args.budget,
        "rounds": args.rounds,
        "seeds": args.seeds,
    }
    tag = f"lr{args.learning_rate:g}" if args.learning_rate is not None else "default"
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"sim-{tag}.yaml"
    path.write_text(yaml.safe_dump(sim, sort_keys=False), encoding="utf-8")

    started = time.perf_counter()
    result = simulate(path, out=args.out / tag, cache_dir=args.out / "cache", console=Console(stderr=True))
    seconds = time.perf_counter() - started
    print(result.summary)
    summary = summarize(result.curves)
    curves = {
        strategy: [[labels, round(mean, 4), round(sd, 4)] for _, _, labels, mean, sd in rows.iter_rows()]
        for (strategy,), rows in summary.means.group_by("strategy", maintain_order=True)
    }
    reach = {k: None if v is None else round(v) for k, v in summary.reach.items()}
    numbers = {"recipe": training, "seconds": round(seconds, 1), "target": summary.target, "reach": reach}
    print(json.dumps(numbers | {"curves": curves}))


if __name__ == "__main__":
    main()
