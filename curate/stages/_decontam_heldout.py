"""The held-out check of ``decontaminate``: ``train`` rows must not leak ``validation`` / ``test`` rows.

The held-out turns become the items of an index (adaptive N as for a benchmark), and the train
turns are probed and judged exactly as against a benchmark, so the reasons are
``heldout_exact_match``, ``heldout_ngram_overlap`` and
``heldout_contains_item``. Held-out rows stay; only train rows are removed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from curate.stages._decontam_index import build_index
from curate.stages._decontam_judge import MatchRule, judge, per_row
from curate.stages._decontam_match import Turns, probe, turns_of
from curate.stages.base import StageContext

if TYPE_CHECKING:
    from curate.stages.decontaminate import DecontaminateConfig


def heldout_matches(
    frame: pl.DataFrame, ctx: StageContext, config: DecontaminateConfig, rule: MatchRule, *, reason: np.ndarray,
    detail: np.ndarray,
) -> dict:
    """Fill ``reason`` / ``detail`` for train rows (not yet removed) that leak a held-out row; the stats."""
    if not config.heldout_splits or "split" not in frame.columns:
        return {"checked": False, "why": "no split column" if config.heldout_splits else "off"}
    split = frame["split"].to_numpy()
    alive = np.array([r is None for r in reason], dtype=bool)
    heldout = alive & np.isin(split, config.heldout_splits)
    train = alive & (split == "train")
    if not heldout.any() or not train.any():
        return {"checked": False, "why": "no train or no held-out rows"}
    turns = turns_of(frame, ctx.kind, roles=None if config.heldout_text == "all" else [config.heldout_text])
    held_turn, train_turn = heldout[turns.row], train[turns.row]
    held_rows = turns.row[held_turn]
    items = pl.DataFrame({
        "benchmark": split[held_rows].astype(str), "item_id": frame["id"].gather(held_rows),
        "prompt": turns.text.filter(held_turn), "query": turns.text.filter(held_turn),
    })
    index = build_index(items, ngram=config.ngram, min_ngram=config.min_ngram, adaptive=config.adaptive_ngram,
                        min_item_words=config.min_item_words, normalisation=config.normalisation)
    checked = Turns(text=turns.text.filter(train_turn), row=turns.row[train_turn])
    found = probe(checked, index, batch_rows=config.batch_rows, normalisation=config.normalisation,
                  max_rows=config.heldout_max_train_rows)
    matches = per_row(judge(found, index, rule), checked.row, index, prefix="heldout", labels=("split", "heldout_id"))
    for row, (rsn, det) in matches.items():
        reason[row], detail[row] = rsn, det
    return {"checked": True, "heldout_rows": int(heldout.sum()), "train_rows": int(train.sum()),
            "train_rows_removed": len(matches)}
