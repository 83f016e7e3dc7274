"""The benchmark n-gram index of ``decontaminate``: built once, cached on disk, probed per batch.

For every benchmark the n-gram size is ``clip(5th-percentile query length, min_ngram, ngram)``
(GPT-3's rule) or ``ngram`` when ``adaptive`` is off. Every item contributes

* the hashes of all its query n-grams (``match = NGRAM``) to ``grams``;
* the hash of its whole normalised prompt when the prompt is shorter than N words but has at
  least ``min_item_words`` words, and of its whole query when the query is that short
  (``match = WHOLE_PROMPT / WHOLE_QUERY``) to ``grams``: short items escape n-grams, so the
  whole item is looked for inside a turn instead (containment);
* the hashes of its whole prompt and whole query, whatever their length, to ``exact``: a turn
  equal to one of them is an exact match.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from curate.stages._ngrams import GramHasher, Normalisation, Tokens, tokenise

__all__ = ["BenchmarkIndex", "build_index", "cache_key", "load_index", "save_index"]

INDEX_VERSION = 2  # bump when the index layout or hashing changes
NGRAM, WHOLE_QUERY, WHOLE_PROMPT = 0, 1, 2  # values of grams.match


@dataclass
class BenchmarkIndex:
    """``grams``: (h, item, start, n, match) per indexed n-gram or short whole item; ``exact``:
    (h, item, n, match) per whole prompt and query; ``items``: (benchmark, item_id, words,
    prompt_words), normalised tokens; ``ngram``: N per benchmark."""

    grams: pl.DataFrame
    exact: pl.DataFrame
    items: pl.DataFrame
    ngram: dict[str, int]

    def lengths(self) -> list[int]:
        """The distinct n-gram lengths to probe, longest first."""
        return sorted(self.grams["n"].unique().to_list(), reverse=True)


def choose_ngram(lengths: np.ndarray, *, ngram: int, min_ngram: int, adaptive: bool) -> int:
    """N for one benchmark: ``clip(5th percentile of query lengths, min_ngram, ngram)``."""
    if not adaptive or len(lengths) == 0:
        return ngram
    return int(np.clip(int(np.percentile(lengths, 5)), min_ngram, ngram))


def build_index(
    items: pl.DataFrame,
    *,
    ngram: int,
    min_ngram: int,
    adaptive: bool,
    min_item_words: int,
    normalisation: Normalisation,
) -> BenchmarkIndex:
    """Index the items of :mod:`curate.benchmarks` frames (concatenated, in order)."""
    query = tokenise(items["query"], normalisation=normalisation)
    prompt = tokenise(items["prompt"], normalisation=normalisation)
    bench = items["benchmark"].to_numpy()
    n_of: dict[str, int] = {}
    for name in items["benchmark"].unique(maintain_order=True).to_list():
        n_of[name] = choose_ngram(query.lengths[bench == name], ngram=ngram, min_ngram=min_ngram, adaptive=adaptive)
    item_n = items["benchmark"].replace_strict(n_of, return_dtype=pl.Int64).to_numpy()
    hasher = GramHasher(query)
    parts = []
    for n in sorted(set(n_of.values())):
        h, starts = hasher.grams(n)
        rows = query.row[starts]
        own = item_n[rows] == n
        first = np.concatenate([[0], np.cumsum(query.lengths)])[rows[own]]
        parts.append(_frame(h[own], rows[own], starts[own] - first, n, match=NGRAM))
    for match, tokens in ((WHOLE_QUERY, query), (WHOLE_PROMPT, prompt)):
        short = np.flatnonzero((tokens.lengths >= min_item_words) & (tokens.lengths < item_n))
        if len(short):
            h = GramHasher(tokens).whole(short)
            parts.append(_frame(h, short, np.zeros(len(short), np.int64), tokens.lengths[short], match=match))
    grams = pl.concat(parts).unique(["h", "item", "n"], keep="first", maintain_order=True)
    exact = []
    for match, tokens in ((WHOLE_QUERY, query), (WHOLE_PROMPT, prompt)):
        rows = np.flatnonzero(tokens.lengths > 0)
        hashes = GramHasher(tokens).whole(rows)
        exact.append(_frame(hashes, rows, np.zeros(len(rows)), tokens.lengths[rows], match=match))
    exact_table = pl.concat(exact).drop("start").unique(["h", "item", "n"], keep="first", maintain_order=True)
    table = items.select("benchmark", "item_id").with_columns(
        words=_split(query), prompt_words=_split(prompt)
    )
    return BenchmarkIndex(grams=grams, exact=exact_table, items=table, ngram=n_of)


def _split(tokens: Tokens) -> pl.Series:
    offsets = np.concatenate([[0], np.cumsum(tokens.lengths)])
    words = tokens.words.to_list()
    return pl.Series([words[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)], dtype=pl.List(pl.String))


def _frame(h: np.ndarray, item: np.ndarray, start: np.ndarray, n: int | np.ndarray, *, match: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "h": h,
            "item": item.astype(np.uint32),
            "start": start.astype(np.uint32),
            "n": np.broadcast_to(np.asarray(n, dtype=np.uint16), h.shape),
            "match": np.full(h.shape, match, dtype=np.uint8),
        }
    )


def cache_key(sources: list[dict], **settings: object) -> str:
    """Digest of the benchmark files (path, size, mtime), the settings and the hashing version."""
    payload = {"sources": sources, "settings": settings, "version": INDEX_VERSION, "polars": pl.__version__}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:24]


def save_index(index: BenchmarkIndex, folder: Path, key: str) -> None:
    """Write the index as three Parquet files and a JSON header (atomic renames)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in (("grams", index.grams), ("exact", index.exact), ("items", index.items)):
        tmp = folder / f"{key}.{name}.parquet.tmp"
        frame.write_parquet(tmp)
        tmp.replace(folder / f"{key}.{name}.parquet")
    (folder / f"{key}.json").write_text(json.dumps({"ngram": index.ngram}))


def load_index(folder: Path, key: str) -> BenchmarkIndex | None:
    """The cached index for ``key``, or ``None`` when there is none."""
    header = folder / f"{key}.json"
    if not header.exists():
        return None
    return BenchmarkIndex(
        grams=pl.read_parquet(folder / f"{key}.grams.parquet"),
        exact=pl.read_parquet(folder / f"{key}.exact.parquet"),
        items=pl.read_parquet(folder / f"{key}.items.parquet"),
        ngram=json.loads(header.read_text())["ngram"],
    )


