"""``label pull``: annotators' submitted choices become a new version of a preference dataset."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from curate.argilla.answers import Answer, parse_answers, resolve_answers
from curate.argilla.client import connect, find_dataset, iter_records, usernames
from curate.argilla.errors import ArgillaError, NothingSubmittedError
from curate.argilla.layout import rows_frame
from curate.errors import CurateError
from curate.records import SCHEMAS
from curate.stats import StageStats

if TYPE_CHECKING:
    import argilla as rg

    from curate.store import Store

__all__ = ["PullResult", "Pulled", "pull", "pull_frame"]


@dataclass(frozen=True)
class PullResult:
    """The committed version and how the answered records were resolved."""

    dataset: str
    version: int
    kept: int
    removed_by_reason: dict[str, int]
    answered: int
    pending: int


@dataclass(frozen=True)
class Pulled:
    """The answered records of an Argilla preference dataset, resolved; nothing committed (:func:`pull_frame`)."""

    kept: pl.DataFrame  # preference rows, chosen = the side the majority preferred
    removed: pl.DataFrame  # rows as pushed plus ``reason`` / ``detail`` (tie, both_bad, no_majority, discarded)
    answered: int
    pending: int
    records: int
    dataset_id: str
    sources: dict[str, int]  # curate_ref -> answered records


def pull_frame(client: rg.Argilla, dataset: str, *, store: Store | None = None, workspace: str = "argilla") -> Pulled:
    """The answered records of an Argilla preference dataset as kept / removed rows, committing nothing.

    Records nobody answered yet only count in ``pending``. ``store`` reads the pushed rows of
    records that do not carry them (pushed by older curate versions); ``None``: every record must.
    """
    ds = find_dataset(client, dataset, workspace)
    if ds is None:
        raise ArgillaError(f"Argilla at {client.api_url} has no dataset {dataset!r} in workspace {workspace!r}.")
    records = list(iter_records(client, ds.id, responses=True))
    answers, pending = parse_answers(records, users=usernames(client))
    if not answers:
        empty = pl.DataFrame(schema=SCHEMAS["preference"])
        return Pulled(empty, empty, 0, pending, len(records), str(ds.id), {})
    rows = _source_rows(store, answers)
    argilla = {"url": client.api_url, "workspace": workspace, "dataset": dataset}
    kept, removed = resolve_answers(rows, answers, argilla=argilla)
    sources = dict(sorted(Counter(a.ref or "unknown" for a in answers).items()))
    return Pulled(kept, removed, len(answers), pending, len(records), str(ds.id), sources)


def _source_rows(store: Store | None, answers: list[Answer]) -> pl.DataFrame:
    """The pushed rows of the answered records: embedded in the records, else read from the store."""
    parts = []
    embedded = [a.row for a in answers if a.row is not None]
    if embedded:
        parts.append(rows_frame(embedded))
    lookup = {a.row_id: a.ref for a in answers if a.row is None}
    refs = set(lookup.values())
    if refs and (store is None or None in refs or any(not _is_version(ref) for ref in refs)):
        raise ArgillaError(
            "Some answered records carry neither the pushed row (`curate_row` metadata) nor a stored version "
            f"(`curate_ref` = {sorted(map(str, refs))}): they were not pushed by `curate label push` or the "
            "`label` stage of this curate version."
        )
    ids = set(lookup)
    for ref in sorted(refs):
        try:
            parts.append(store.kept(ref).filter(pl.col("id").is_in(list(ids))))
        except CurateError as exc:
            raise ArgillaError(
                f"The answered records came from {ref}, which the store {store.root} cannot read ({exc}). "
                "Pull with the store the pairs were pushed from (--store)."
            ) from None
    rows = pl.concat(parts, how="diagonal_relaxed").unique("id", keep="first", maintain_order=True)
    missing = ids - set(rows["id"].to_list())
    if missing:
        raise ArgillaError(
            f"{len(missing)} answered records (e.g. {min(missing)}) are not in {', '.join(sorted(refs))}; "
            "was the Argilla dataset filled by another store?"
        )
    return rows


def _is_version(ref: str | None) -> bool:
    return ref is not None and "@" in ref and ref.rsplit("@", 1)[1].isdigit()


def pull(
    store: Store,
    dataset: str,
    *,
    into: str,
    api_url: str,
    api_key: str,
    workspace: str = "argilla",
) -> PullResult:
    """Commit the answered records of an Argilla dataset as a new version of ``into``.

    Kept rows are the pairs whose majority vote picked a side (chosen = that side); ties,
    both-bad, discards and split votes are stored as removed rows with that reason. Records
    nobody has answered yet are left for a later pull (counted in ``pending``). Each row keeps
    the ``split`` it had in the pushed version.

    Parameters
    ----------
    store
        The dataset store the pairs were pushed from; the new version is written there too.
    dataset
        The Argilla dataset name.
    into
        Name of the preference dataset to write (a new version when it exists).
    api_url, api_key, workspace
        The Argilla server, an owner's or admin's key, and the dataset's workspace.

    Raises
    ------
    NothingSubmittedError
        No record has a submitted or discarded response yet; nothing is committed.
    """
    started = time.perf_counter()
    pulled = pull_frame(connect(api_url, api_key), dataset, store=store, workspace=workspace)
    if not pulled.answered:
        raise NothingSubmittedError(
            f"Nobody has submitted an answer in the Argilla dataset {dataset!r} yet ({pulled.records} records "
            f"pending at {api_url}). Annotate in the web UI, then pull again."
        )
    kept, removed, pending = pulled.kept, pulled.removed, pulled.pending
    argilla = {"url": api_url, "workspace": workspace, "dataset": dataset}
    reasons = dict(removed.group_by("reason").len().sort("reason").iter_rows()) if removed.height else {}
    seconds = time.perf_counter() - started
    stages = [
        StageStats(
            stage="convert",
            name="convert",
            rows_in=pulled.answered,
            rows_added=0,
            rows_kept=pulled.answered,
            rows_removed=0,
            seconds=seconds,
            extra={"argilla_records": pulled.records, "pending": pending},
        ),
        StageStats(
            stage="label",
            name="label",
            rows_in=pulled.answered,
            rows_added=0,
            rows_kept=kept.height,
            rows_removed=removed.height,
            removed_by_reason=reasons,
            seconds=0.0,
        ),
    ]
    parents = [
        {"dataset": ref.rsplit("@", 1)[0], "version": int(ref.rsplit("@", 1)[1]), "rows": rows}
        for ref, rows in pulled.sources.items()
        if _is_version(ref)
    ]
    lineage = {
        "parents": parents,
        "argilla": {
            **argilla,
            "dataset_id": pulled.dataset_id,
            "records": pulled.records,
            "answered": pulled.answered,
            "pending": pending,
            "sources": pulled.sources,  # curate_ref -> answered records (pipeline:... too)
        },
    }
    version = store.commit(
        into,
        kind="preference",
        kept=kept,
        removed=removed.with_columns(removed_by=pl.lit("label")),
        stages=stages,
        lineage=lineage,
    )
    return PullResult(
        dataset=into,
        version=version,
        kept=kept.height,
        removed_by_reason=reasons,
        answered=pulled.answered,
        pending=pending,
    )
