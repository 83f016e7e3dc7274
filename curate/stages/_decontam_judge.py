"""Which candidate matches count as contamination, and the reason and detail of each removed row.

A candidate is a (turn, item) pair the probe found. It counts when

* ``exact_match``: the normalised turn equals the item's prompt or query (any length);
* ``ngram_overlap``: turn and item share a run of at least ``full_ngram`` words (13: the
  lm-eval / GPT-3 rule), or, for the shorter n-grams of the adaptive N, the turn is a near copy
  of the item: their longest common word subsequence is at least ``near_copy`` of the longer
  of the two (a light edit of the item);
* ``contains_item``: the turn contains a whole short item, and the item is distinctive in the
  checked turns: the sum over its words of ``1 - log(1 + k) / log(1 + N)`` (``k``: other
  distinct checked turns holding the word, ``N``: distinct checked turns; 1 for a word no other
  turn has, about 0 for one every turn has) reaches ``min_rare_words``, or the item is at least
  ``near_copy`` of the turn (a near copy again).

Common phrasing of short-utterance data ("what is the exchange rate", "i tried to make a
transfer and it") then no longer removes unrelated rows; docs/decontaminate.md has the
measurements behind the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from curate.stages._decontam_index import NGRAM, WHOLE_PROMPT, BenchmarkIndex
from curate.stages._decontam_match import Probe
from curate.stages._ngrams import tokenise
from curate.stages.base import detail_json

EXACT, OVERLAP, CONTAINS = 0, 1, 2  # kinds, in the order a row's reason is chosen
KIND_NAMES = {  # kind -> (reason after the prefix, rule in the detail)
    EXACT: ("exact_match", "exact"), OVERLAP: ("ngram_overlap", "ngram"), CONTAINS: ("contains_item", "contains"),
}
_LCS_MAX_WORDS = 100  # longer near copies share a full n-gram unless edited every dozen words
_ACCEPTED = {"turn": pl.Int64, "item": pl.UInt32, "kind": pl.UInt8, "why": pl.String, "match": pl.UInt8,
             "start": pl.UInt32, "n": pl.UInt16, "coverage": pl.Float64, "rare_words": pl.Float64}


@dataclass(frozen=True)
class MatchRule:
    """The thresholds of the decision (the stage config's fields of the same names)."""

    full_ngram: int
    near_copy: float
    min_rare_words: float


def judge(found: Probe, index: BenchmarkIndex, rule: MatchRule) -> pl.DataFrame:
    """The candidates that count: one row per (turn, item, kind) with what to report."""
    exact = found.exact.select(
        "turn", "item", "match", "n", kind=pl.lit(EXACT, pl.UInt8), why=pl.lit("equal"), start=pl.lit(0, pl.UInt32),
        coverage=pl.lit(1.0), rare_words=pl.lit(None, pl.Float64),
    )
    # a turn equal to an item needs no other evidence: judge the rest only (copies are cheap then)
    rest = found.hits.filter(~pl.col("turn").is_in(found.exact["turn"].implode()))
    parts = [exact, _overlaps(rest, found, index, rule), _contained(rest, found, index, rule)]
    return pl.concat([p.select(*_ACCEPTED).cast(_ACCEPTED) for p in parts])


def _overlaps(hits: pl.DataFrame, found: Probe, index: BenchmarkIndex, rule: MatchRule) -> pl.DataFrame:
    ngrams = hits.filter(pl.col("match") == NGRAM).with_columns(diag=pl.col("tstart") - pl.col("start").cast(pl.Int64))
    if ngrams.is_empty():
        return pl.DataFrame(schema=_ACCEPTED)
    pair = ["turn", "item"]
    # longest run of consecutive n-grams on one diagonal = longest shared word run
    runs = (
        ngrams.sort(*pair, "diag", "start")
        .with_columns(brk=(pl.col("start").cast(pl.Int64).diff().over(*pair, "diag") != 1).fill_null(True))
        .with_columns(run_id=pl.col("brk").cum_sum())
        .group_by(*pair, "run_id")
        .agg(start=pl.col("start").first(), run=pl.len() + pl.col("n").first().cast(pl.Int64) - 1)
        .sort("run", descending=True)
        .group_by(*pair)
        .first()
    )
    frame = runs.select(*pair, "start", "run")
    near_copies = _near_copy(frame.filter(pl.col("run") < rule.full_ngram), found, index, rule)
    frame = frame.join(near_copies, on=pair, how="left")
    long, near = pl.col("run") >= rule.full_ngram, pl.col("coverage").fill_null(0.0) >= rule.near_copy
    return frame.filter(long | near).select(
        *pair, match=pl.lit(NGRAM, pl.UInt8), n=pl.col("run"), kind=pl.lit(OVERLAP, pl.UInt8),
        why=pl.when(long).then(pl.lit("run")).otherwise(pl.lit("near_copy")), start="start",
        coverage=pl.col("coverage").round(3), rare_words=pl.lit(None, pl.Float64),
    )


def _near_copy(pairs: pl.DataFrame, found: Probe, index: BenchmarkIndex, rule: MatchRule) -> pl.DataFrame:
    """(turn, item, coverage) for the ``pairs`` whose lengths allow a near copy: their longest
    common word subsequence over the longer one's length."""
    rows = []
    if not pairs.is_empty():
        turn_ids = pairs["turn"].unique()
        tokens = tokenise(found.texts.gather(turn_ids), normalisation=found.normalisation)
        offsets = np.concatenate([[0], np.cumsum(tokens.lengths)])
        words = tokens.words.to_list()
        turn_words = {t: words[a:b] for t, a, b in zip(turn_ids.to_list(), offsets[:-1], offsets[1:], strict=True)}
        item_words = index.items["words"]
        for turn, item in pairs.select("turn", "item").iter_rows():
            a, b = turn_words[turn], item_words[item].to_list()
            longer = max(len(a), len(b))
            if min(len(a), len(b)) >= rule.near_copy * longer and longer <= _LCS_MAX_WORDS:
                rows.append((turn, item, _common_subsequence(a, b) / longer))
    schema = {"turn": pl.Int64, "item": pl.UInt32, "coverage": pl.Float64}
    return pl.DataFrame(rows, schema=schema, orient="row")


def _common_subsequence(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence of two word lists."""
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def _contained(hits: pl.DataFrame, found: Probe, index: BenchmarkIndex, rule: MatchRule) -> pl.DataFrame:
    whole = hits.filter(pl.col("match") != NGRAM).unique(["turn", "item", "match"])
    if whole.is_empty():
        return pl.DataFrame(schema=_ACCEPTED)
    rare = 1 - pl.col("df").cast(pl.Float64).log() / np.log1p(found.distinct_turns)  # df = k + 1: the turn itself
    rarity = found.df.select("word", rare=rare)
    texts = index.items.select("words", "prompt_words").with_row_index("item").cast({"item": pl.UInt32})
    words = (
        whole.select("item", "match").unique()
        .join(texts, on="item")
        .select("item", "match", word=pl.when(pl.col("match") == WHOLE_PROMPT).then("prompt_words").otherwise("words"))
        .explode("word")
        .join(rarity, on="word", how="left")
        .group_by("item", "match")
        .agg(rare_words=pl.col("rare").fill_null(1.0).clip(lower_bound=0.0).sum())
    )
    frame = whole.join(words, on=["item", "match"])
    turn_len = pl.Series(found.lengths[frame["turn"].to_numpy()])
    frame = frame.with_columns(coverage=pl.col("n").cast(pl.Float64) / turn_len)
    rare, near = pl.col("rare_words") >= rule.min_rare_words, pl.col("coverage") >= rule.near_copy
    return frame.filter(rare | near).select(
        "turn", "item", "match", "n", kind=pl.lit(CONTAINS, pl.UInt8),
        why=pl.when(near).then(pl.lit("near_copy")).otherwise(pl.lit("rare_words")), start=pl.lit(0, pl.UInt32),
        coverage=pl.col("coverage").round(3), rare_words=pl.col("rare_words").round(2),
    )


def per_row(
    accepted: pl.DataFrame, turn_rows: np.ndarray, index: BenchmarkIndex, *, prefix: str, labels: tuple[str, str]
) -> dict[int, tuple[str, str]]:
    """Row -> (reason, detail) of each row's first accepted match (exact, then n-gram, then containment).

    ``prefix`` starts the reason (``benchmark`` / ``heldout``); ``labels`` name the item's
    benchmark and id in the detail (``benchmark, item_id`` or ``split, heldout_id``).
    """
    if accepted.is_empty():
        return {}
    rows = accepted.with_columns(row=pl.Series(turn_rows[accepted["turn"].to_numpy()], dtype=pl.Int64))
    first = (
        rows.sort("row", "kind", "item")
        .group_by("row", maintain_order=True)
        .agg(pl.all().first(), items_matched=pl.col("item").n_unique())
    )
    items = index.items.with_row_index("item").cast({"item": pl.UInt32})
    words = pl.when(pl.col("match") == WHOLE_PROMPT).then("prompt_words").otherwise("words")
    first = first.join(items, on="item", how="left", maintain_order="left").with_columns(
        text=words.list.slice(pl.col("start"), pl.col("n")).list.join(" ")
    )
    out = {}
    for r in first.iter_rows(named=True):
        reason, rule = KIND_NAMES[r["kind"]]
        measured = {"why": r["why"], "coverage": r["coverage"], "rare_words": r["rare_words"]}
        extra = {} if r["kind"] == EXACT else {k: v for k, v in measured.items() if v is not None}
        out[r["row"]] = (
            f"{prefix}_{reason}",
            detail_json(rule=rule, **{labels[0]: r["benchmark"], labels[1]: r["item_id"]}, ngram=r["text"], n=r["n"],
                        items_matched=r["items_matched"], **extra),
        )
    return out
