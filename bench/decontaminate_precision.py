#!/usr/bin/env python
"""Precision and recall of ``decontaminate`` on short utterances (BANKING77), with ground truth.

    python bench/decontaminate_precision.py [--data ../shared/data] [--set near_copy=0 --set min_rare_words=0]

BANKING77's ``train.csv`` is split with a fixed seed into 3,000 held-out utterances and 7,003
training utterances (the "natural" rows). Three scenarios:

* ``banking_vs_file``: the held-out utterances are a benchmark file (``against``), the training
  rows plus 200 seeded leaks are checked: 100 held-out utterances re-cased and re-punctuated
  (exact leaks) and 100 held-out utterances of 10+ words with one word deleted (near-exact leaks);
* ``banking_vs_split``: the same rows in one frame with a ``split`` column (held-out rows are
  ``test``), so the held-out check runs instead;
* ``banking_vs_mmlu_truthfulqa``: the natural rows plus 200 short MMLU / TruthfulQA questions
  (5-12 words) seeded four ways (re-punctuated alone, "Quick one: ...", appended to a banking
  question, "hey, ... thanks") against the built-in ``mmlu`` and ``truthfulqa``.

Ground truth, per training row: a seeded row is a leak; a natural row is a leak when it is a
near-exact duplicate of some held-out utterance (normalised words; word edit distance at most
10 % of the longer one, rounded down, so rows under 10 words must be equal). Natural rows never
leak MMLU / TruthfulQA (checked the same way). ``--set`` passes stage fields (e.g. the old
behaviour: ``near_copy=0 min_rare_words=0``). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from collections import defaultdict
from pathlib import Path

import polars as pl

from curate import benchmarks
from curate.records import build_frame
from curate.stages._ngrams import tokenise
from curate.stages.base import StageContext
from curate.stages.decontaminate import Decontaminate, DecontaminateConfig


def _words(texts: list[str]) -> list[tuple[str, ...]]:
    """Normalised words of each text, the stage's own way."""
    tokens = tokenise(pl.Series(texts, dtype=pl.String))
    words, out, at = tokens.words.to_list(), [], 0
    for n in tokens.lengths:
        out.append(tuple(words[at : at + n]))
        at += n
    return out


def _edit(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def near_exact_rows(rows: list[tuple[str, ...]], items: list[tuple[str, ...]]) -> set[int]:
    """Rows within 10 % word edits of some item. A near-exact pair shares a word 4-gram (or is
    equal), so only pairs sharing one are compared."""
    exact = set(items)
    by_gram: dict[tuple[str, ...], set[int]] = defaultdict(set)
    for k, w in enumerate(items):
        for i in range(len(w) - 3):
            by_gram[w[i : i + 4]].add(k)
    out = set()
    for r, w in enumerate(rows):
        if w in exact:
            out.add(r)
            continue
        if len(w) < 10:
            continue
        candidates = set().union(*(by_gram.get(w[i : i + 4], ()) for i in range(len(w) - 3)))
        for k in candidates:
            limit = int(0.1 * max(len(w), len(items[k])))
            if abs(len(w) - len(items[k])) <= limit and _edit(w, items[k]) <= limit:
                out.add(r)
                break
    return out


def _frame(users: list[str], assistants: list[str]) -> pl.DataFrame:
    records = [{"messages": [{"role": "user", "content": u}, {"role": "assistant", "content": a}]}
               for u, a in zip(users, assistants, strict=True)]
    frame, invalid = build_frame("sft", records)
    assert invalid.is_empty()
    return frame


def _repunctuate(text: str) -> str:
    return text.replace(",", "").replace("?", "!").replace(".", "").upper()


def scenarios(data: Path, rng: random.Random) -> dict:
    banking = pl.read_csv(data / "banking77" / "train.csv", infer_schema=False).with_row_index("n")
    held = banking.sample(3000, seed=0)
    train = banking.filter(~pl.col("n").is_in(held["n"].implode()))
    natural, answers = train["text"].to_list(), ("I can help with that: " + train["category"]).to_list()
    held_texts = held["text"].to_list()
    exact = [_repunctuate(t) for t in rng.sample(held_texts, 100)]
    near = []
    for t in rng.sample([t for t in held_texts if len(t.split()) >= 10], 100):
        words = t.split()
        del words[rng.randrange(1, len(words) - 1)]
        near.append(" ".join(words))
    items = pl.concat([benchmarks.load_builtin(b, root=data) for b in ("mmlu", "truthfulqa")])
    short = items.filter(pl.col("prompt").str.split(" ").list.len().is_between(5, 12), pl.col("prompt").is_unique())
    picks = [p for b in ("mmlu", "truthfulqa")
             for p in rng.sample(short.filter(pl.col("benchmark") == b)["prompt"].to_list(), 100)]
    styles = [_repunctuate, lambda p: "Quick one: " + p, lambda p: rng.choice(natural) + " Also, " + p,
              lambda p: "hey, " + p + " thanks"]
    bench_seeds = [styles[k % 4](p) for k, p in enumerate(picks)]
    natural_words = _words(natural)
    seeded = set(range(len(natural), len(natural) + 200))
    return {
        "banking": (natural + exact + near, answers + ["Let me check."] * 200,
                    near_exact_rows(natural_words, _words(held_texts)) | seeded),
        "bench": (natural + bench_seeds, answers + ["Let me check."] * 200,
                  near_exact_rows(natural_words, _words(items["prompt"].to_list())) | seeded),
        "held": held.select(id=pl.col("n").cast(pl.String), text="text"),
        "natural": len(natural),
    }


def measure(removed: set[int], leaks: set[int], rows: int, natural: int) -> dict:
    tp, fp = len(removed & leaks), len(removed - leaks)
    return {"rows": rows, "leaks": len(leaks), "removed": len(removed), "tp": tp, "fp": fp, "fn": len(leaks - removed),
            "precision": round(tp / len(removed), 3) if removed else 1.0, "recall": round(tp / len(leaks), 3),
            "natural_removed_pct": round(100 * len([r for r in removed if r < natural]) / natural, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--set", action="append", default=[], help="stage field=value (JSON value), e.g. near_copy=0")
    args = ap.parse_args()
    data = Path(args.data)
    fields = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    s = scenarios(data, random.Random(0))
    report = {"fields": fields}
    with tempfile.TemporaryDirectory() as tmp:
        held_file = Path(tmp) / "banking_heldout.jsonl"
        s["held"].write_ndjson(held_file)
        ctx = StageContext(dataset="bench", kind="sft", base_dir=Path(tmp), stage_id="decontaminate")
        users, answers, leaks = s["banking"]
        frame = _frame(users, answers).with_row_index("row")
        against = [{"path": str(held_file), "name": "banking_heldout", "fields": ["text"], "id_field": "id"}]
        result = Decontaminate(DecontaminateConfig(against=against, **fields)).apply(frame, ctx)
        report["banking_vs_file"] = measure(set(result.removed["row"]), leaks, frame.height, s["natural"])
        report["banking_vs_file"]["reasons"] = dict(result.removed["reason"].value_counts().iter_rows())

        held = _frame(s["held"]["text"].to_list(), ["I can help with that."] * s["held"].height)
        both = pl.concat([frame.with_columns(split=pl.lit("train")), held.with_row_index("row", offset=frame.height)
                          .with_columns(split=pl.lit("test"))], how="diagonal_relaxed")
        result = Decontaminate(DecontaminateConfig(**fields)).apply(both, ctx)
        report["banking_vs_split"] = measure(set(result.removed["row"]), leaks, frame.height, s["natural"])
        report["banking_vs_split"]["reasons"] = dict(result.removed["reason"].value_counts().iter_rows())

        users, answers, leaks = s["bench"]
        frame = _frame(users, answers).with_row_index("row")
        config = DecontaminateConfig(against=["mmlu", "truthfulqa"], benchmarks_dir=str(data), **fields)
        result = Decontaminate(config).apply(frame, ctx)
        report["banking_vs_mmlu_truthfulqa"] = measure(set(result.removed["row"]), leaks, frame.height, s["natural"])
        report["banking_vs_mmlu_truthfulqa"]["reasons"] = dict(result.removed["reason"].value_counts().iter_rows())
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
