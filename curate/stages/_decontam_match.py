"""Probing rows against the benchmark index and the held-out rows (batch-wise, vectorised)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np
import polars as pl

from curate.stages._decontam_index import NGRAM, BenchmarkIndex
from curate.stages._ngrams import GramHasher, Normalisation, gram_text, tokenise
from curate.stages.base import detail_json

Track = Callable[..., Iterator]


def _no_track(items: Iterable, **_: object) -> Iterator:
    yield from items


def _drop_frequent(matches: pl.DataFrame, max_rows: int | None) -> tuple[pl.DataFrame, int]:
    """Drop n-grams found in more than ``max_rows`` distinct rows (boilerplate)."""
    if max_rows is None or matches.is_empty():
        return matches, 0
    frequent = matches.group_by("h").agg(pl.col("row").n_unique().alias("rows")).filter(pl.col("rows") > max_rows)
    return matches.filter(~pl.col("h").is_in(frequent["h"].implode())), frequent.height


def probe(
    texts: pl.Series,
    index: BenchmarkIndex,
    *,
    batch_rows: int,
    normalisation: Normalisation,
    max_rows: int | None,
    track: Track = _no_track,
) -> tuple[pl.DataFrame, int]:
    """Every (row, index entry) pair whose hashes agree, less frequent n-grams; and how many
    distinct n-grams were ignored as frequent."""
    tables = {
        n: index.grams.filter(pl.col("n") == n).select("h", "item", "start", "match") for n in index.lengths()
    }
    found = []
    starts = range(0, len(texts), batch_rows)
    for lo in track(starts, description="benchmark n-grams", total=len(starts)):
        tokens = tokenise(texts.slice(lo, batch_rows), normalisation=normalisation)
        if tokens.size == 0:
            continue
        hasher = GramHasher(tokens)
        for n, table in tables.items():
            h, pos = hasher.grams(n)
            probe_frame = pl.DataFrame({"h": h, "row": tokens.row[pos] + lo})
            hit = probe_frame.join(table, on="h", how="inner")
            if hit.height:
                found.append(hit.with_columns(n=pl.lit(n, pl.UInt16)))
    schema = {"h": pl.UInt64, "row": pl.Int64, "item": pl.UInt32, "start": pl.UInt32, "match": pl.UInt8, "n": pl.UInt16}
    matches = pl.concat(found).cast(schema) if found else pl.DataFrame(schema=schema)
    return _drop_frequent(matches, max_rows)


def first_per_row(matches: pl.DataFrame, index: BenchmarkIndex) -> dict[int, tuple[str, str]]:
    """Row -> (reason, detail) for the first match of each row (n-gram matches before whole items)."""
    if matches.is_empty():
        return {}
    per_row = (
        matches.sort("row", "match", "item", "start")
        .group_by("row", maintain_order=True)
        .agg(pl.all().first(), items_matched=pl.col("item").n_unique())
    )
    names, ids = index.items["benchmark"], index.items["item_id"]
    out = {}
    for row, item, start, match, n, count in per_row.select("row", "item", "start", "match", "n", "items_matched").iter_rows():
        text = index.matched_text(item, start, n, match)
        if match == NGRAM:
            reason, rule = "benchmark_ngram_overlap", "ngram"
        else:
            reason, rule = "benchmark_exact_match", "whole_item"
        out[row] = (
            reason,
            detail_json(rule=rule, benchmark=names[item], item_id=ids[item], ngram=text, n=n, items_matched=count),
        )
    return out


def probe_heldout(
    texts: pl.Series,
    *,
    heldout_rows: np.ndarray,
    train_rows: np.ndarray,
    n: int,
    normalisation: Normalisation,
    max_rows: int | None,
) -> dict[int, tuple[int, str]]:
    """Train row -> (held-out row, shared n-gram) for every train row sharing an n-gram."""
    held = tokenise(texts.gather(heldout_rows), normalisation=normalisation)
    h, pos = GramHasher(held).grams(n)
    table = pl.DataFrame({"h": h, "hpos": pos, "hrow": heldout_rows[held.row[pos]]}).unique("h", keep="first")
    train = tokenise(texts.gather(train_rows), normalisation=normalisation)
    th, tpos = GramHasher(train).grams(n)
    hits = pl.DataFrame({"h": th, "row": train_rows[train.row[tpos]]}).join(table, on="h", how="inner")
    hits, _ = _drop_frequent(hits, max_rows)
    first = hits.sort("row", "hrow").group_by("row", maintain_order=True).first()
    return {
        row: (hrow, gram_text(held.words, hpos, n)) for row, hrow, hpos in first.select("row", "hrow", "hpos").iter_rows()
    }
