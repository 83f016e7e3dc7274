"""Finding candidate matches: the turns of a frame probed against an index (batch-wise, vectorised).

Matching works on turns, not rows: every message of a row is probed on its own, so a turn can
equal an item exactly and n-grams never run across two turns. :mod:`._decontam_judge` decides
which candidates count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import polars as pl

from curate.records import conversation_columns
from curate.stages._decontam_index import NGRAM, BenchmarkIndex
from curate.stages._ngrams import GramHasher, Normalisation, tokenise

Track = Callable[..., Iterator]

HITS = {"h": pl.UInt64, "turn": pl.Int64, "tstart": pl.Int64, "item": pl.UInt32, "start": pl.UInt32,
        "match": pl.UInt8, "n": pl.UInt16}
_EXACT = {"turn": pl.Int64, "item": pl.UInt32, "match": pl.UInt8, "n": pl.UInt16}
_DF = {"word": pl.String, "df": pl.UInt32}


def _no_track(items: Iterable, **_: object) -> Iterator:
    yield from items


@dataclass
class Turns:
    """One text per message: ``text[i]`` belongs to frame row ``row[i]``."""

    text: pl.Series
    row: np.ndarray


def turns_of(frame: pl.DataFrame, kind: str, *, roles: list[str] | None = None) -> Turns:
    """The message texts of every row (only ``roles`` when given), in row order."""
    parts = []
    for column in conversation_columns(kind):
        element = pl.element()
        if roles is not None:
            element = element.filter(element.struct.field("role").is_in(roles))
        parts.append(
            frame.select(row=pl.int_range(pl.len(), dtype=pl.Int64),
                         text=pl.col(column).list.eval(element.struct.field("content")))
            .explode("text")
            .drop_nulls("text")
        )
    turns = pl.concat(parts).sort("row", maintain_order=True)
    return Turns(text=turns["text"], row=turns["row"].to_numpy())


@dataclass
class Probe:
    """What probing found: n-gram and whole-item hits, exact hits, turn lengths, and the document
    frequency of every word of the index's short items (distinct turn texts containing it: copies
    of one text do not make its words common)."""

    hits: pl.DataFrame  # HITS schema; tstart is the hit's first token inside its turn
    exact: pl.DataFrame  # (turn, item, match, n)
    lengths: np.ndarray  # tokens per turn
    df: pl.DataFrame  # (word, df)
    distinct_turns: int  # distinct turn texts (N of the document frequency)
    texts: pl.Series  # the probed turns, for checking a candidate word by word
    normalisation: Normalisation
    ignored: int  # distinct n-grams ignored as frequent

    def candidate_pairs(self) -> int:
        """Distinct (turn, item) pairs found, before judging."""
        return pl.concat([self.hits.select("turn", "item"), self.exact.select("turn", "item")]).n_unique()


def _drop_frequent(matches: pl.DataFrame, max_rows: int | None, rows: np.ndarray) -> tuple[pl.DataFrame, int]:
    """Drop n-grams found in more than ``max_rows`` distinct frame rows (boilerplate)."""
    if max_rows is None or matches.is_empty():
        return matches, 0
    with_row = matches.with_columns(row=pl.Series(rows[matches["turn"].to_numpy()]))
    frequent = with_row.group_by("h").agg(pl.col("row").n_unique().alias("rows")).filter(pl.col("rows") > max_rows)
    return matches.filter(~pl.col("h").is_in(frequent["h"].implode())), frequent.height


def probe(
    turns: Turns,
    index: BenchmarkIndex,
    *,
    batch_rows: int,
    normalisation: Normalisation,
    max_rows: int | None,
    track: Track = _no_track,
) -> Probe:
    """Every (turn, index entry) pair whose hashes agree, less n-grams found in more than
    ``max_rows`` rows; every turn equal to a whole item."""
    tables = {
        n: index.grams.filter(pl.col("n") == n).select("h", "item", "start", "match") for n in index.lengths()
    }
    short_items = index.grams.filter(pl.col("match") != NGRAM)["item"].unique()
    vocab = pl.concat([index.items["words"].gather(short_items), index.items["prompt_words"].gather(short_items)])
    vocab = vocab.explode().drop_nulls().unique().implode()
    found, exact, lengths, df = [], [], [], []
    distinct = turns.text.is_first_distinct().to_numpy()
    starts = range(0, len(turns.text), batch_rows)
    for lo in track(starts, description="benchmark n-grams", total=len(starts)):
        tokens = tokenise(turns.text.slice(lo, batch_rows), normalisation=normalisation)
        lengths.append(tokens.lengths)
        if tokens.size == 0:
            continue
        hasher = GramHasher(tokens)
        first = np.concatenate([[0], np.cumsum(tokens.lengths)])
        for n, table in tables.items():
            h, pos = hasher.grams(n)
            row = tokens.row[pos]
            probe_frame = pl.DataFrame({"h": h, "turn": row + lo, "tstart": pos - first[row]})
            hit = probe_frame.join(table, on="h", how="inner")
            if hit.height:
                found.append(hit.with_columns(n=pl.lit(n, pl.UInt16)))
        nonempty = np.flatnonzero(tokens.lengths > 0)
        whole = pl.DataFrame({"h": hasher.whole(nonempty), "turn": nonempty + lo, "words": tokens.lengths[nonempty]})
        same = whole.join(index.exact, on="h", how="inner").filter(pl.col("words") == pl.col("n").cast(pl.Int64))
        exact.append(same.select("turn", "item", "match", "n"))
        counted = pl.Series(distinct[lo : lo + batch_rows][tokens.row])
        words = pl.DataFrame({"word": tokens.words, "turn": tokens.row}).filter(counted & pl.col("word").is_in(vocab))
        df.append(words.unique().group_by("word").len("df"))
    hits = pl.concat(found).select(*HITS).cast(HITS) if found else pl.DataFrame(schema=HITS)
    hits, ignored = _drop_frequent(hits, max_rows, turns.row)
    return Probe(
        hits=hits,
        exact=pl.concat(exact) if exact else pl.DataFrame(schema=_EXACT),
        lengths=np.concatenate(lengths) if lengths else np.zeros(0, np.int64),
        df=pl.concat(df).group_by("word").agg(pl.col("df").sum()) if df else pl.DataFrame(schema=_DF),
        ignored=ignored,
        distinct_turns=int(distinct.sum()),
        texts=turns.text,
        normalisation=normalisation,
    )
