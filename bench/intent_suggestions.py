#!/usr/bin/env python
"""How good are the loop's label suggestions? A BANKING77 ``head`` run's top-k on held-out rows.

    python bench/intent_suggestions.py [--per-intent 10 25] [--test 1500] [--lr 1e-3] [--out FILE]

For each ``--per-intent`` (labels per intent the head is trained on, all 77 intents, seeded),
trains the head (bundled all-MiniLM-L6-v2, pipelines/train-intent-head.yaml's settings) through
curate's runner, proposes top-5 labels for ``--test`` rows it never saw
(:func:`curate.loop.propose.propose_labels`), and reports how often the gold label is the top
suggestion / among the top 3 / top 5, the mean probability of the top suggestion, and how often
the top suggestion is right in the most / middle / least confident third of the rows (is the
probability a useful order for annotators?). Results: docs/loop.md.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import polars as pl
import yaml

from curate.loop.propose import propose_labels
from curate.pipeline import run_pipeline
from curate.records import record_id
from curate.train.recipe import Recipe
from curate.train.runner import train

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77" / "train.csv"


def _store(work: Path, rows: pl.DataFrame, name: str) -> None:
    rows.write_csv(work / f"{name}.csv")
    spec = {"source": {"path": f"{name}.csv", "format": "table",
                       "mapping": {"user": "text", "assistant": "category", "label": "category"}},
            "stages": [], "output": name}  # fmt: skip
    (work / f"{name}.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    run_pipeline(work / f"{name}.yaml", store_root=work / "store")


def _test_frame(rows: pl.DataFrame) -> pl.DataFrame:
    prompts = [[{"role": "user", "content": t}] for t in rows["text"]]
    ids = [record_id("prompt", {"prompt": p, "label": y}) for p, y in zip(prompts, rows["category"], strict=True)]
    return pl.DataFrame({"id": ids, "source": "banking77", "meta": "{}", "prompt": prompts, "label": rows["category"]})


def measure(per_intent: int, *, test: pl.DataFrame, pool: pl.DataFrame, work: Path, lr: float) -> dict:
    picked = pool.filter(pl.int_range(pl.len()).over("category") < per_intent)
    _store(work, picked, f"train{per_intent}")
    recipe = Recipe.model_validate({
        "model": "all-MiniLM-L6-v2", "method": "sft", "adapter": "head", "dataset": f"train{per_intent}",
        "output_dir": str(work / "runs"), "training": {"epochs": 30, "batch_size": 32, "learning_rate": lr},
    })  # fmt: skip
    started = time.perf_counter()
    run = train(recipe, store=work / "store")
    trained = time.perf_counter() - started
    frame = _test_frame(test)
    started = time.perf_counter()
    out = propose_labels(frame, head_run=run.path, k=5)
    proposed = time.perf_counter() - started
    gold = out["label"].to_list()
    labels, scores = out["suggested_labels"].to_list(), out["suggested_scores"].to_list()
    result = {"per_intent": per_intent, "lr": lr, "train_rows": picked.height, "test_rows": out.height,
              "train_s": round(trained, 1), "propose_rows_per_s": round(out.height / proposed, 1)}  # fmt: skip
    for k in (1, 3, 5):
        result[f"top{k}"] = round(sum(g in ls[:k] for g, ls in zip(gold, labels, strict=True)) / len(gold), 4)
    result["mean_top1_probability"] = round(sum(ss[0] for ss in scores) / len(scores), 4)
    # rows ranked by the top suggestion's probability, in thirds: is confidence a useful ordering?
    ranked = sorted(zip(gold, labels, scores, strict=True), key=lambda r: -r[2][0])
    third = len(ranked) // 3
    for name, part in (("most", ranked[:third]), ("middle", ranked[third:-third]), ("least", ranked[-third:])):
        result[f"top1_{name}_confident_third"] = round(sum(g == ls[0] for g, ls, _ in part) / len(part), 4)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-intent", type=int, nargs="+", default=[10, 25])
    parser.add_argument("--test", type=int, default=1500)
    parser.add_argument("--lr", type=float, default=1e-3, help="head learning rate (the recipe default is 1e-3)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    data = pl.read_csv(DATA).sample(fraction=1.0, shuffle=True, seed=0)
    test, pool = data.head(args.test), data.slice(args.test)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.per_intent:
            results.append(measure(n, test=test, pool=pool, work=Path(tmp), lr=args.lr))
            print(json.dumps(results[-1]), flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
