"""Step 5, *merge*: the labeled failures -> a version of ``<loop>-labeled``, then the next training version.

``<loop>-labeled`` holds one iteration's labeled rows: a seeded share is held out (split ``test``)
for the gate, the rest is ``train``. The next training version holds every kept row of the
previous one (splits unchanged) plus the labeled ``train`` rows, through ``dedup_exact`` against
what is there: a labeled row whose text is already in the training data is removed with reason
``exact_duplicate`` (old rows are never removed). Its lineage names both parents.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import polars as pl

from curate.records import SCHEMAS, STORE_COLUMNS
from curate.stages.base import StageContext
from curate.stages.dedup_exact import DedupExact, DedupExactConfig
from curate.stats import StageStats
from curate.store import Store

__all__ = ["commit_labeled", "merge_training"]


def _convert(rows: int) -> StageStats:
    return StageStats("convert", "convert", rows, 0, rows, 0)


def commit_labeled(
    labeled: pl.DataFrame, *, store: Store, name: str, holdout: float, seed: int, lineage: dict[str, Any]
) -> str:
    """Commit labeled ``sft`` rows as a version of ``name`` with a held-out ``test`` share; returns ``name@N``.

    At least one row is held out and one kept for training when there are two or more rows.
    """
    n = labeled.height
    held = min(max(round(n * holdout), 1 if n >= 2 else 0), max(n - 1, 0))
    order = np.random.default_rng(seed).permutation(n)
    split = np.full(n, "train", dtype=object)
    split[order[:held]] = "test"
    kept = labeled.with_columns(split=pl.Series(split.tolist(), dtype=pl.String))
    stats = StageStats("split", "split", n, 0, n, 0, extra={"test": held, "train": n - held, "seed": seed})
    version = store.commit(name, kind="sft", kept=kept, removed=pl.DataFrame(schema={**SCHEMAS["sft"], **STORE_COLUMNS}), stages=[_convert(n), stats], lineage=lineage)
    return f"{name}@{version}"


def merge_training(store: Store, *, training: str, labeled: str, lineage: dict[str, Any]) -> str:
    """A new version of the training dataset: ``training`` (a ``name@N``) plus the ``train`` rows of ``labeled``.

    Returns the new ``name@N``.
    """
    name, _ = store.resolve(training)
    old = store.kept(training)
    new = store.kept(labeled, split="train")
    frame = pl.concat([old, new.select(old.columns)], how="vertical_relaxed")
    start = time.perf_counter()
    ctx = StageContext(dataset=name, kind="sft", base_dir=store.root, store=store, stage_id="dedup_exact")
    result = DedupExact(DedupExactConfig()).apply(frame, ctx)
    old_ids = set(old.get_column("id").to_list())
    back = result.removed.filter(pl.col("id").is_in(list(old_ids)))  # old rows stay, even when they repeat
    removed = result.removed.filter(~pl.col("id").is_in(list(old_ids))).with_columns(removed_by=pl.lit("dedup_exact"))
    kept = pl.concat([result.kept, back.select(result.kept.columns)], how="vertical_relaxed")
    reasons = dict(removed.group_by("reason").len().iter_rows()) if removed.height else {}
    stats = StageStats("dedup_exact", "dedup_exact", frame.height, 0, kept.height, removed.height, reasons,
                       seconds=round(time.perf_counter() - start, 3))  # fmt: skip
    version = store.commit(
        name, kind="sft", kept=kept, removed=removed, stages=[_convert(frame.height), stats],
        lineage={**lineage, "parents": [training, labeled]},
    )  # fmt: skip
    return f"{name}@{version}"
