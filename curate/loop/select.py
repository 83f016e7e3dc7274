"""Step 2, *select*: which collected rows annotators see, within the budget; every row gets a reason.

Order of the rules (the first that applies decides):

1. ``duplicate``: a near copy (cosine >= ``duplicate_threshold``) of an earlier collected row.
2. explicit failures (thumbs down, rating 1-2, escalated, a correction; :func:`curate.feedback.verdict`)
   are candidates first.
3. ``duplicate_of_training``: a row that is not a failure and nearly copies a training row.
4. ``confident``: not a failure, the model is sure (uncertainty below ``min_uncertainty``, or no
   model to ask) and the row is close to the training data (novelty below ``min_novelty``).
5. The candidates fill the budget, failures first; within each group :func:`diverse_pick` spreads the
   picks over k-means clusters of the embeddings, best score (uncertainty + novelty) first. The rest
   are ``over_budget``.

The result has one row per collected row: ``id``, ``selected``, ``reason`` (null when selected),
``failure``, ``uncertainty`` (null without a model to ask), ``novelty``, ``score``. The uncertainty
comes in computed: from a ``head`` run's class probabilities (:func:`curate.loop.strategies.uncertainty`)
or from a causal LM's answer (:mod:`curate.loop.answer_scores`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from curate.feedback import verdict
from curate.loop.config import SelectConfig
from curate.loop.strategies import diverse_pick, novelty

__all__ = ["REASONS", "reason_counts", "select_rows"]

REASONS = ("duplicate", "duplicate_of_training", "confident", "over_budget")
Embed = Callable[[list[str]], np.ndarray]


def _duplicates(emb: np.ndarray, threshold: float) -> np.ndarray:
    """True for each row that nearly copies an earlier row (greedy, in order)."""
    dup = np.zeros(len(emb), dtype=bool)
    for i in range(1, len(emb)):
        sims = emb[:i][~dup[:i]] @ emb[i]
        dup[i] = bool(sims.size and sims.max() >= threshold)
    return dup


def select_rows(
    rows: pl.DataFrame,
    *,
    texts: list[str],
    training_texts: list[str],
    embed: Embed,
    budget: int,
    config: SelectConfig,
    uncertainty: np.ndarray | None = None,
) -> pl.DataFrame:
    """One decision per collected row: selected, or the reason it was not.

    Parameters
    ----------
    rows
        The collected ``feedback`` rows (``id``, ``feedback``).
    texts, training_texts
        What the model reads of each row, and of each training row.
    embed
        Texts -> unit-length vectors (e.g. :func:`curate.embeddings.embed` with a cache).
    budget
        Most rows selected.
    config
        The loop's ``select`` block.
    uncertainty
        Per row, how unsure the current model is (higher: less sure): from a ``head`` run's class
        probabilities, or in [0, 1] for a causal LM's own answer. ``None``: no model to ask, so only
        failures and novel rows are candidates.
    """
    n = rows.height
    emb = embed(texts) if n else np.zeros((0, 1), dtype=np.float32)
    ref = embed(training_texts) if training_texts and n else np.zeros((0, emb.shape[1]), dtype=np.float32)
    novel = novelty(emb, ref) if n else np.zeros(0)
    unsure = np.asarray(uncertainty, dtype=float) if uncertainty is not None and n else None
    failure = np.array([verdict(v).desirable is False for v in rows.get_column("feedback").to_list()], dtype=bool)
    reason = np.full(n, None, dtype=object)
    reason[_duplicates(emb, config.duplicate_threshold)] = "duplicate"
    free = reason == None  # noqa: E711 - elementwise on an object array
    reason[free & ~failure & (novel <= 1.0 - config.duplicate_threshold)] = "duplicate_of_training"
    sure = unsure < config.min_uncertainty if unsure is not None else np.ones(n, dtype=bool)
    free = reason == None  # noqa: E711
    reason[free & ~failure & sure & (novel < config.min_novelty)] = "confident"
    score = novel + (unsure if unsure is not None else 0.0)
    left = budget
    for group in (failure, ~failure):
        candidates = np.flatnonzero((reason == None) & group)  # noqa: E711
        picked = set(candidates[diverse_pick(emb[candidates], score[candidates], left, seed=config.seed)].tolist())
        reason[[i for i in candidates if i not in picked]] = "over_budget"
        left -= len(picked)
    return pl.DataFrame({
        "id": rows.get_column("id"),
        "selected": pl.Series([r is None for r in reason], dtype=pl.Boolean),
        "reason": pl.Series(reason.tolist(), dtype=pl.String),
        "failure": pl.Series(failure.tolist(), dtype=pl.Boolean),
        "uncertainty": pl.Series(unsure.tolist() if unsure is not None else [None] * n, dtype=pl.Float64),
        "novelty": pl.Series(novel.tolist(), dtype=pl.Float64),
        "score": pl.Series(np.asarray(score, dtype=float).tolist() if n else [], dtype=pl.Float64),
    })  # fmt: skip


def reason_counts(selection: pl.DataFrame) -> dict[str, int]:
    """``selected`` and each reason -> rows (every reason listed, 0 when none)."""
    counts = {"selected": int(selection.get_column("selected").sum())}
    found = dict(selection.get_column("reason").drop_nulls().value_counts().iter_rows())
    return counts | {r: int(found.get(r, 0)) for r in REASONS}
