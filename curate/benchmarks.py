"""Benchmark loaders for decontamination: every benchmark becomes one frame of items.

An item frame has one row per benchmark item and the columns

========== =================================================================================
benchmark  the benchmark's name (``gsm8k``, ``mmlu`` ..., or the name given to a file)
item_id    a stable id inside the benchmark (``test:12``, ``HumanEval/3``, ``test/anatomy:7``)
prompt     the question alone: whole-item matching uses it when it is shorter than N words
query      the question plus its answer / choices: its n-grams are the ones looked for
========== =================================================================================

Built-in benchmarks are read from a benchmarks folder laid out like ``shared/data``:

============ ====================================== =============================================
name         file(s) under the folder                query fields
============ ====================================== =============================================
gsm8k        ``gsm8k/test.jsonl``                    question, answer
humaneval    ``humaneval/HumanEval.jsonl.gz``        prompt, canonical_solution
mmlu         ``mmlu/test/*.csv``, ``mmlu/dev/*.csv`` question, choice0..choice3
truthfulqa   ``truthfulqa/TruthfulQA.csv``           Question, Best Answer, Correct Answers
hellaswag    ``hellaswag/hellaswag_val_full.txt.bz2`` context, gold ending
mt_bench     ``fastchat/mt_bench/question.jsonl``    turns
============ ====================================== =============================================

Any other JSONL / JSON / CSV / Parquet file (optionally ``.gz`` / ``.bz2``) is read with
:func:`load_file`: its ``fields`` are joined into the query, the first field is the prompt.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import polars as pl

from curate.errors import InputError

__all__ = ["BUILTIN_BENCHMARKS", "benchmark_files", "find_benchmarks_dir", "load_builtin", "load_file"]

ITEM_SCHEMA = pl.Schema({"benchmark": pl.String, "item_id": pl.String, "prompt": pl.String, "query": pl.String})


def _read_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if path.suffix == ".gz":
        return gzip.decompress(data)
    if path.suffix == ".bz2":
        return bz2.decompress(data)
    return data


def _items(name: str, ids: Sequence[str], prompts: Sequence[str], queries: Sequence[str]) -> pl.DataFrame:
    return pl.DataFrame(
        {"benchmark": [name] * len(ids), "item_id": list(ids), "prompt": list(prompts), "query": list(queries)},
        schema=ITEM_SCHEMA,
    )


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in _read_bytes(path).decode("utf-8").splitlines() if line.strip()]


def _gsm8k(root: Path) -> pl.DataFrame:
    rows = _jsonl(root / "gsm8k" / "test.jsonl")
    return _items(
        "gsm8k", [f"test:{i}" for i in range(len(rows))], [r["question"] for r in rows],
        [f"{r['question']}\n{r['answer']}" for r in rows],
    )


def _humaneval(root: Path) -> pl.DataFrame:
    rows = _jsonl(root / "humaneval" / "HumanEval.jsonl.gz")
    return _items(
        "humaneval", [r["task_id"] for r in rows], [r["prompt"] for r in rows],
        [r["prompt"] + r["canonical_solution"] for r in rows],
    )


def _mmlu(root: Path) -> pl.DataFrame:
    frames = []
    for split in ("test", "dev"):
        for path in sorted((root / "mmlu" / split).glob("*.csv")):
            subject = path.stem.removesuffix(f"_{split}")
            df = pl.read_csv(path, infer_schema=False)
            choices = [c for c in df.columns if c.startswith("choice")]
            frames.append(
                df.select(
                    benchmark=pl.lit("mmlu"),
                    item_id=pl.format(f"{split}/{subject}:{{}}", pl.int_range(pl.len())),
                    prompt=pl.col("question"),
                    query=pl.concat_str(["question", *choices], separator="\n", ignore_nulls=True),
                )
            )
    if not frames:
        raise FileNotFoundError(root / "mmlu" / "test")
    return pl.concat(frames).cast(dict(ITEM_SCHEMA))


def _truthfulqa(root: Path) -> pl.DataFrame:
    df = pl.read_csv(root / "truthfulqa" / "TruthfulQA.csv", infer_schema=False)
    return df.select(
        benchmark=pl.lit("truthfulqa"),
        item_id=pl.int_range(pl.len()).cast(pl.String),
        prompt=pl.col("Question"),
        query=pl.concat_str(["Question", "Best Answer", "Correct Answers"], separator="\n", ignore_nulls=True),
    )


def _hellaswag(root: Path) -> pl.DataFrame:
    """The text export has 6 lines per item: ``activity_label: context``, gold index, 4 endings."""
    lines = _read_bytes(root / "hellaswag" / "hellaswag_val_full.txt.bz2").decode("utf-8").split("\n")
    ids, prompts, queries = [], [], []
    for i in range(len(lines) // 6):
        head, gold, *endings = lines[6 * i : 6 * i + 6]
        context = head.partition(": ")[2] or head
        ids.append(f"val:{i}")
        prompts.append(context)
        queries.append(f"{context} {endings[int(gold)]}")
    return _items("hellaswag", ids, prompts, queries)


def _mt_bench(root: Path) -> pl.DataFrame:
    rows = _jsonl(root / "fastchat" / "mt_bench" / "question.jsonl")
    return _items(
        "mt_bench", [str(r["question_id"]) for r in rows], [r["turns"][0] for r in rows],
        ["\n".join(r["turns"]) for r in rows],
    )


BUILTIN_BENCHMARKS: dict[str, tuple[tuple[str, ...], Callable[[Path], pl.DataFrame]]] = {
    "gsm8k": (("gsm8k/test.jsonl",), _gsm8k),
    "humaneval": (("humaneval/HumanEval.jsonl.gz",), _humaneval),
    "mmlu": (("mmlu/test/*.csv", "mmlu/dev/*.csv"), _mmlu),
    "truthfulqa": (("truthfulqa/TruthfulQA.csv",), _truthfulqa),
    "hellaswag": (("hellaswag/hellaswag_val_full.txt.bz2",), _hellaswag),
    "mt_bench": (("fastchat/mt_bench/question.jsonl",), _mt_bench),
}
"""Built-in benchmark name -> (file globs relative to the benchmarks folder, loader)."""


def benchmark_files(name: str, root: Path) -> list[Path]:
    """The files a built-in benchmark reads under ``root`` (for cache keys)."""
    return sorted(p for pattern in BUILTIN_BENCHMARKS[name][0] for p in root.glob(pattern))


def load_builtin(name: str, *, root: Path) -> pl.DataFrame:
    """Load a built-in benchmark from the benchmarks folder ``root``.

    Parameters
    ----------
    name
        One of :data:`BUILTIN_BENCHMARKS`.
    root
        The benchmarks folder (``shared/data`` layout).
    """
    if name not in BUILTIN_BENCHMARKS:
        raise InputError(f"Unknown benchmark {name!r}; built-in benchmarks are {', '.join(BUILTIN_BENCHMARKS)}.")
    try:
        return BUILTIN_BENCHMARKS[name][1](root)
    except (FileNotFoundError, OSError) as exc:
        raise InputError(
            f"Benchmark {name!r} was not found under {root} ({exc}). Set `benchmarks_dir` in the "
            "decontaminate stage or the CURATE_BENCHMARKS environment variable to the benchmarks folder."
        ) from None


def _read_table(path: Path) -> pl.DataFrame:
    name = path.name.removesuffix(".gz").removesuffix(".bz2")
    if name.endswith(".parquet"):
        return pl.read_parquet(path)
    data = io.BytesIO(_read_bytes(path))
    if name.endswith(".csv"):
        return pl.read_csv(data, infer_schema=False)
    if name.endswith(".jsonl"):
        return pl.read_ndjson(data, infer_schema_length=None)
    if name.endswith(".json"):
        return pl.read_json(data, infer_schema_length=None)
    raise InputError(f"Cannot read benchmark file {path}: use .jsonl, .json, .csv or .parquet (optionally .gz/.bz2).")


def _as_text(column: str, dtype: pl.DataType) -> pl.Expr:
    if dtype == pl.String:
        return pl.col(column)
    if isinstance(dtype, pl.List) and dtype.inner == pl.String:
        return pl.col(column).list.join("\n")
    return pl.col(column).cast(pl.String) if dtype.is_primitive() else pl.col(column).struct.json_encode()


def load_file(
    path: Path, *, name: str | None = None, fields: Sequence[str] | None = None, id_field: str | None = None
) -> pl.DataFrame:
    """Load any JSONL / JSON / CSV / Parquet file as benchmark items.

    Parameters
    ----------
    path
        The file; ``.gz`` and ``.bz2`` are decompressed.
    name
        Benchmark name in removal details; ``None`` uses the file name without suffixes.
    fields
        Columns joined (newline-separated) into the query; the first one is the prompt used for
        whole-item matching. ``None`` uses every text column in file order.
    id_field
        Column holding item ids; ``None`` numbers the rows from 0.
    """
    df = _read_table(path)
    label = name or path.name.split(".")[0]
    if fields is None:
        fields = [c for c, t in df.schema.items() if t == pl.String and c != id_field]
    missing = [f for f in [*fields, *([id_field] if id_field else [])] if f not in df.columns]
    if missing or not fields:
        raise InputError(
            f"Benchmark file {path} has no column(s) {missing or 'of text'}; its columns are "
            f"{', '.join(df.columns)}. Set `fields` (and `id_field`) in the decontaminate stage's `against` entry."
        )
    texts = [_as_text(f, df.schema[f]) for f in fields]
    return df.select(
        benchmark=pl.lit(label),
        item_id=pl.col(id_field).cast(pl.String) if id_field else pl.int_range(pl.len()).cast(pl.String),
        prompt=texts[0].fill_null(""),
        query=pl.concat_str(texts, separator="\n", ignore_nulls=True).fill_null(""),
    )


def find_benchmarks_dir(start: Path) -> Path | None:
    """The first ``shared/data`` folder found walking up from ``start`` (the default layout)."""
    for folder in [start, *start.resolve().parents]:
        candidate = folder / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return None
