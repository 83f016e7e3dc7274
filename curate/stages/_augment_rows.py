"""Which rows ``augment`` varies, which turn of them, and the candidate rows built from the variants."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from curate.records import MESSAGES, conversation_columns, record_id

__all__ = ["Selection", "build_candidates", "select_sources"]


@dataclass
class Selection:
    """The source rows, the turn varied per field, and why other rows were left alone.

    Attributes
    ----------
    rows
        Frame positions of the rows to vary, in frame order.
    turns
        ``turns[i][f]``: index (in the kind's first message column) of the turn of ``fields[f]``.
    need
        Per label, how many more rows ``max_per_label`` allows (only labels below it); empty without it.
    skipped
        Rows not varied per cause (``held_out``, ``augmented``, ``label``, ``at_max_per_label``,
        ``not_needed``, ``no_turn``).
    """

    rows: list[int]
    turns: list[list[int]]
    need: dict[str, int]
    skipped: dict[str, int]


def _last_turn(messages: Sequence[dict] | None, role: str) -> int | None:
    hits = [i for i, m in enumerate(messages or []) if m["role"] == role]
    return hits[-1] if hits else None


def select_sources(
    frame: pl.DataFrame,
    *,
    kind: str,
    fields: Sequence[str],
    n: int,
    only_labels: Sequence[str] | None,
    max_per_label: int | None,
    seed: int,
) -> Selection:
    """Rows to vary: ``train`` (or not yet split) rows that are not augmentations themselves, of
    ``only_labels`` when set, of labels below ``max_per_label`` when set, that have every field's turn.

    With ``max_per_label`` a label needing ``m`` more rows gets ``ceil(2 m / n)`` source rows in a
    seeded order (twice what it needs, so rejected candidates rarely leave it short).
    """
    split = frame["split"] if "split" in frame.columns else pl.Series([None] * frame.height, dtype=pl.String)
    train = (split.is_null() | (split == "train")).to_numpy()
    original = frame["augmented_from"].is_null().to_numpy() if "augmented_from" in frame.columns else np.ones(frame.height, bool)
    labels = frame["label"].to_list() if "label" in frame.columns else [None] * frame.height
    skipped = {"held_out": int((~train).sum()), "augmented": int((train & ~original).sum())}
    pool = np.flatnonzero(train & original)
    if only_labels is not None:
        wanted = set(only_labels)
        keep = [i for i in pool if labels[i] in wanted]
        skipped["label"] = len(pool) - len(keep)
        pool = np.array(keep, dtype=np.int64)
    need: dict[str, int] = {}
    if max_per_label is not None:
        counts = pl.Series([labels[i] for i in np.flatnonzero(train)], dtype=pl.String).value_counts()
        need = {k: max_per_label - c for k, c in counts.iter_rows() if k is not None and c < max_per_label}
        keep = [i for i in pool if labels[i] in need]
        skipped["at_max_per_label"] = len(pool) - len(keep)
        pool = _enough(frame, np.array(keep, dtype=np.int64), labels, need=need, n=n, seed=seed, skipped=skipped)
    column = conversation_columns(kind)[0]
    messages = frame[column].gather(pool).to_list() if len(pool) else []
    rows, turns = [], []
    for i, conversation in zip(pool, messages, strict=True):
        found = [_last_turn(conversation, role) for role in fields]
        if all(t is not None for t in found):
            rows.append(int(i))
            turns.append(found)
    skipped["no_turn"] = len(pool) - len(rows)
    return Selection(rows, turns, need, {k: v for k, v in skipped.items() if v})


def _enough(
    frame: pl.DataFrame, pool: np.ndarray, labels: list, *, need: dict[str, int], n: int, seed: int, skipped: dict
) -> np.ndarray:
    """Per label, the first ``ceil(2 * need / n)`` rows of ``pool`` in a seeded order."""
    if not len(pool):
        return pool
    order = frame["id"].gather(pool).hash(seed=seed).to_numpy().argsort(kind="stable")
    taken: dict[str, int] = {}
    keep = []
    for i in pool[order]:
        label = labels[i]
        if taken.get(label, 0) < math.ceil(2 * need[label] / n):
            taken[label] = taken.get(label, 0) + 1
            keep.append(i)
    skipped["not_needed"] = len(pool) - len(keep)
    return np.sort(np.array(keep, dtype=np.int64))


def build_candidates(
    frame: pl.DataFrame, selection: Selection, variants: list[list[list[str]]], *, kind: str, n: int
) -> pl.DataFrame:
    """Candidate rows: each source row ``n`` times with its fields' turns replaced by the variants.

    ``variants[i][f][k]`` is the ``k``-th variant of field ``f`` of source ``i``. A candidate keeps
    its source's other columns (label, split, meta...), gets its own content id and
    ``augmented_from`` = the source's id.
    """
    column = conversation_columns(kind)[0]
    sources = frame[selection.rows]
    conversations = sources[column].to_list()
    replaced = []
    for conversation, turns, texts in zip(conversations, selection.turns, variants, strict=True):
        for k in range(n):
            messages = [dict(m) for m in conversation]
            for turn, field_texts in zip(turns, texts, strict=True):
                messages[turn]["content"] = field_texts[k]
            replaced.append(messages)
    repeated = np.repeat(np.arange(len(selection.rows)), n)
    candidates = sources[repeated].with_columns(
        pl.Series(column, replaced, dtype=MESSAGES), augmented_from=pl.col("id")
    )
    id_columns = [c for c in (*conversation_columns(kind), "label", "feedback") if c in candidates.columns]
    ids = [record_id(kind, record) for record in candidates.select(id_columns).iter_rows(named=True)]
    return candidates.with_columns(id=pl.Series(ids, dtype=pl.String))
