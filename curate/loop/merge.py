"""Step 5, *merge*: the labeled failures -> a version of ``<loop>-labeled``, then the next training version.

Any record kind: ``sft`` rows (intent labels, sft loops) or ``preference`` pairs (dpo / kto loops);
the labeled rows have the training dataset's kind. ``<loop>-labeled`` holds one iteration's labeled rows: a seeded share is held out (split ``test``)
for the gate, the rest is ``train``. The next training version holds every kept row of the
previous one (splits unchanged) plus the labeled ``train`` rows, through ``dedup_exact`` against
what is there (a labeled row whose text is already in the training data is removed with reason
``exact_duplicate``) and ``decontaminate``'s held-out check (a labeled row that leaks a
``validation`` / ``test`` row is removed); rows that were there already are never removed. Its
lineage names both parents.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import polars as pl

from curate.records import SCHEMAS, STORE_COLUMNS
from curate.stages.base import Stage, StageContext
from curate.stages.decontaminate import Decontaminate, DecontaminateConfig
from curate.stages.dedup_exact import DedupExact, DedupExactConfig
from curate.stats import StageStats
from curate.store import Store

__all__ = ["commit_labeled", "merge_training"]


def _convert(rows: int) -> StageStats:
    return StageStats("convert", "convert", rows, 0, rows, 0)


def commit_labeled(
    labeled: pl.DataFrame, *, store: Store, name: str, holdout: float, seed: int, lineage: dict[str, Any], kind: str = "sft"
) -> str:
    """Commit labeled rows of ``kind`` as a version of ``name`` with a held-out ``test`` share; returns ``name@N``.

    At least one row is held out and one kept for training when there are two or more rows.
    """
    n = labeled.height
    held = min(max(round(n * holdout), 1 if n >= 2 else 0), max(n - 1, 0))
    order = np.random.default_rng(seed).permutation(n)
    split = np.full(n, "train", dtype=object)
    split[order[:held]] = "test"
    kept = labeled.with_columns(split=pl.Series(split.tolist(), dtype=pl.String))
    stats = StageStats("split", "split", n, 0, n, 0, extra={"test": held, "train": n - held, "seed": seed})
    removed = pl.DataFrame(schema={**SCHEMAS[kind], **STORE_COLUMNS})
    version = store.commit(name, kind=kind, kept=kept, removed=removed, stages=[_convert(n), stats], lineage=lineage)
    return f"{name}@{version}"


def _new_rows_only(stage: Stage, frame: pl.DataFrame, *, old_ids: set[str], ctx: StageContext) -> tuple[pl.DataFrame, pl.DataFrame, StageStats]:
    """Run ``stage`` but remove only rows that are not in ``old_ids`` (the training data there already stays)."""
    start = time.perf_counter()
    result = stage.apply(frame, ctx)
    is_old = pl.col("id").is_in(list(old_ids))
    back = result.removed.filter(is_old).select(result.kept.columns)
    removed = result.removed.filter(~is_old).with_columns(removed_by=pl.lit(stage.name))
    kept = frame.filter(pl.col("id").is_in(pl.concat([result.kept["id"], back["id"]]).to_list()))  # input order
    reasons = dict(removed.group_by("reason").len().iter_rows()) if removed.height else {}
    stats = StageStats(stage.name, stage.name, frame.height, 0, kept.height, removed.height, reasons,
                       seconds=round(time.perf_counter() - start, 3))  # fmt: skip
    return kept, removed, stats


def merge_training(store: Store, *, training: str, labeled: str, lineage: dict[str, Any]) -> str:
    """A new version of the training dataset: ``training`` (a ``name@N``) plus the ``train`` rows of ``labeled``.

    The new rows go through ``dedup_exact`` (against what is there and each other) and
    ``decontaminate`` (no benchmark, only the held-out check: a new train row that leaks a
    ``validation`` / ``test`` row is removed). Returns the new ``name@N``.
    """
    name, _ = store.resolve(training)
    kind = store.kind(training)
    old = store.kept(training)
    new = store.kept(labeled, split="train")
    frame = pl.concat([old, new.select(old.columns)], how="vertical_relaxed")
    old_ids = set(old.get_column("id").to_list())
    stages, removed = [_convert(frame.height)], []
    for stage in (DedupExact(DedupExactConfig()), Decontaminate(DecontaminateConfig(cache=False))):
        ctx = StageContext(dataset=name, kind=kind, base_dir=store.root, store=store, stage_id=stage.name)
        frame, gone, stats = _new_rows_only(stage, frame, old_ids=old_ids, ctx=ctx)
        stages.append(stats)
        removed.append(gone)
    version = store.commit(
        name, kind=kind, kept=frame, removed=pl.concat(removed, how="diagonal_relaxed"), stages=stages,
        lineage={**lineage, "parents": [training, labeled]},
    )  # fmt: skip
    return f"{name}@{version}"
