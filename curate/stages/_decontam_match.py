"""Finding candidate matches: the turns of a frame probed against an index (batch-wise, vectorised).

Matching works on turns, not rows: every message of a row is probed on its own, so a turn can
equal an item exactly and n-grams never run across two turns. :mod:`._decontam_judge` decides
which candidates count.

Probing is split in two so an engine can run the batches elsewhere: :func:`probe_batch` handles one
batch of turns against the index's :class:`Lookup` (row-local), :func:`merge` joins the batches'
:class:`Part` s and does what needs the whole frame (n-grams in too many rows). :func:`probe` is both,
in this process.
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
ProbeFn = Callable[..., "Probe"]  # probe()'s signature: (turns, index, *, batch_rows, normalisation, max_rows, track)

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


@dataclass
class Lookup:
    """What probing a batch of turns needs from an index (built once, shipped once to Ray workers)."""

    tables: dict[int, pl.DataFrame]  # N -> (h, item, start, match) of the N-word entries
    exact: pl.DataFrame  # the index's whole-item hashes
    vocab: pl.Series  # the words of the short items, imploded: only their document frequency is needed


def lookup_of(index: BenchmarkIndex) -> Lookup:
    """The n-gram tables of ``index`` per N, its whole-item hashes and its short items' words."""
    tables = {
        n: index.grams.filter(pl.col("n") == n).select("h", "item", "start", "match") for n in index.lengths()
    }
    short_items = index.grams.filter(pl.col("match") != NGRAM)["item"].unique()
    vocab = pl.concat([index.items["words"].gather(short_items), index.items["prompt_words"].gather(short_items)])
    return Lookup(tables=tables, exact=index.exact, vocab=vocab.explode().drop_nulls().unique().implode())


@dataclass
class Part:
    """What one batch of turns found, before the frame-global steps (:func:`merge`)."""

    hits: pl.DataFrame  # HITS schema, turns numbered in the whole frame
    exact: pl.DataFrame  # (turn, item, match, n)
    lengths: np.ndarray  # tokens per turn of the batch
    df: pl.DataFrame  # (word, df) over the batch's counted turns

    @classmethod
    def empty(cls, lengths: np.ndarray) -> Part:
        """Nothing found in turns of these ``lengths``."""
        return cls(pl.DataFrame(schema=HITS), pl.DataFrame(schema=_EXACT), lengths, pl.DataFrame(schema=_DF))


def probe_batch(texts: pl.Series, lookup: Lookup, *, first_turn: int, counted: np.ndarray,
                normalisation: Normalisation) -> Part:
    """Hits of the turns ``texts`` (numbered from ``first_turn``) against ``lookup``; ``counted``
    flags the turns whose words count in the document frequency (first copies of a text)."""
    tokens = tokenise(texts, normalisation=normalisation)
    if tokens.size == 0:
        return Part.empty(tokens.lengths)
    found = []
    hasher = GramHasher(tokens)
    first = np.concatenate([[0], np.cumsum(tokens.lengths)])
    for n, table in lookup.tables.items():
        h, pos = hasher.grams(n)
        row = tokens.row[pos]
        probe_frame = pl.DataFrame({"h": h, "turn": row + first_turn, "tstart": pos - first[row]})
        hit = probe_frame.join(table, on="h", how="inner")
        if hit.height:
            found.append(hit.with_columns(n=pl.lit(n, pl.UInt16)))
    nonempty = np.flatnonzero(tokens.lengths > 0)
    whole = pl.DataFrame(
        {"h": hasher.whole(nonempty), "turn": nonempty + first_turn, "words": tokens.lengths[nonempty]}
    )
    same = whole.join(lookup.exact, on="h", how="inner").filter(pl.col("words") == pl.col("n").cast(pl.Int64))
    words = pl.DataFrame({"word": tokens.words, "turn": tokens.row})
    words = words.filter(pl.Series(counted[tokens.row]) & pl.col("word").is_in(lookup.vocab))
    return Part(
        hits=pl.concat(found).select(*HITS).cast(HITS) if found else pl.DataFrame(schema=HITS),
        exact=same.select("turn", "item", "match", "n").cast(_EXACT),
        lengths=tokens.lengths,
        df=words.unique().group_by("word").len("df").cast(_DF),
    )


def merge(parts: list[Part], turns: Turns, *, counted: np.ndarray, max_rows: int | None,
          normalisation: Normalisation) -> Probe:
    """The batches' finds as one :class:`Probe` (``parts`` in turn order), less n-grams found in
    more than ``max_rows`` rows of the whole frame; ``counted`` is :func:`counted_turns` of ``turns``."""
    parts = parts or [Part.empty(np.zeros(0, np.int64))]
    hits, ignored = _drop_frequent(pl.concat([p.hits for p in parts]), max_rows, turns.row)
    return Probe(
        hits=hits,
        exact=pl.concat([p.exact for p in parts]),
        lengths=np.concatenate([p.lengths for p in parts]),
        df=pl.concat([p.df for p in parts]).group_by("word").agg(pl.col("df").sum()),
        ignored=ignored,
        distinct_turns=int(counted.sum()),
        texts=turns.text,
        normalisation=normalisation,
    )


def counted_turns(turns: Turns) -> np.ndarray:
    """True for the first copy of each turn text: copies of one text do not make its words common."""
    return turns.text.is_first_distinct().to_numpy()


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
    ``max_rows`` rows; every turn equal to a whole item. Batches of ``batch_rows`` turns in this
    process; the ``ray`` engine probes the same batches on its workers (curate/engines/ray/_decontaminate.py)."""
    lookup, counted = lookup_of(index), counted_turns(turns)
    starts = range(0, len(turns.text), batch_rows)
    parts = [
        probe_batch(turns.text.slice(lo, batch_rows), lookup, first_turn=lo, counted=counted[lo : lo + batch_rows],
                    normalisation=normalisation)
        for lo in track(starts, description="benchmark n-grams", total=len(starts))
    ]
    return merge(parts, turns, counted=counted, max_rows=max_rows, normalisation=normalisation)
