"""``label push``: send the pairs of a preference version to Argilla for annotators to judge."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from curate.argilla.client import connect, find_dataset, iter_records, upload_records
from curate.argilla.errors import ArgillaError
from curate.argilla.layout import QUESTION, QuestionKind, preference_settings, to_argilla_record

if TYPE_CHECKING:
    import argilla as rg

    from curate.store import Store

__all__ = ["PushResult", "push", "push_frame"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PushResult:
    """What one push did: the Argilla dataset and how many records were new."""

    url: str
    workspace: str
    dataset: str
    dataset_id: str
    ref: str
    rows: int
    created: int
    existing: int
    dataset_created: bool


def _dataset(
    client: rg.Argilla, name: str, workspace: str, *, question: QuestionKind, rationale: bool
) -> tuple[rg.Dataset, QuestionKind, bool]:
    """Reuse ``name`` (checking it has curate's layout) or create it; returns (dataset, question kind, created)."""
    import argilla as rg

    existing = find_dataset(client, name, workspace)
    if existing is None:
        dataset = rg.Dataset(
            name=name,
            workspace=workspace,
            settings=preference_settings(question=question, rationale=rationale),
            client=client,
        )
        return dataset.create(), question, True
    fields = {f.name for f in existing.settings.fields}
    asked = next((q for q in existing.settings.questions if q.name == QUESTION), None)
    if asked is None or not {"prompt", "response_a", "response_b"} <= fields:
        raise ArgillaError(
            f"The Argilla dataset {name!r} in workspace {workspace!r} was not made by `curate label push` "
            f"(it needs fields prompt, response_a, response_b and a question {QUESTION!r}). "
            "Pass another --dataset-name."
        )
    kind: QuestionKind = "ranking" if type(asked).__name__ == "RankingQuestion" else "label"
    return existing, kind, False


def push_frame(
    frame: pl.DataFrame,
    *,
    client: rg.Argilla,
    ref: str,
    dataset: str,
    workspace: str = "argilla",
    question: QuestionKind = "label",
    rationale: bool = True,
    seed: int = 0,
) -> PushResult:
    """Push preference rows to an Argilla dataset; rows already there (same id) are left alone.

    Parameters
    ----------
    frame
        Rows of kind ``preference`` (``id``, ``prompt``, ``chosen``, ``rejected``, ...).
    client
        A connected SDK client (see :func:`curate.argilla.client.connect`).
    ref
        Where the rows came from (``name@N``, or ``pipeline:OUTPUT`` for the ``label`` stage);
        stored on each record with the row itself, so ``label pull`` needs only Argilla.
    dataset, workspace
        The Argilla dataset (created with curate's layout when missing) and its workspace.
    question
        ``label`` (A / B / tie / both bad) or ``ranking``; an existing dataset keeps its own.
    rationale
        Add the optional free-text rationale question (new datasets only).
    seed
        Seed of the per-row coin flip that decides which candidate is shown as A.
    """
    ds, question, created = _dataset(client, dataset, workspace, question=question, rationale=rationale)
    present = set() if created else {r["external_id"] for r in iter_records(client, ds.id, responses=False)}
    new = [row for row in frame.iter_rows(named=True) if row["id"] not in present]
    embed = bool(ds.settings.allow_extra_metadata)  # False only for datasets made by older curate versions
    if new:
        upload_records(client, ds, [to_argilla_record(row, ref=ref, question=question, seed=seed, embed=embed) for row in new])
    log.info("pushed %d new records to %s/%s (%d already there)", len(new), workspace, dataset, frame.height - len(new))
    return PushResult(
        url=client.api_url,
        workspace=workspace,
        dataset=dataset,
        dataset_id=str(ds.id),
        ref=ref,
        rows=frame.height,
        created=len(new),
        existing=frame.height - len(new),
        dataset_created=created,
    )


def push(
    store: Store,
    ref: str,
    *,
    api_url: str,
    api_key: str,
    workspace: str = "argilla",
    dataset: str | None = None,
    question: QuestionKind = "label",
    rationale: bool = True,
    seed: int = 0,
) -> PushResult:
    """Push the kept rows of a preference version (``name@N`` or ``name``) to Argilla.

    Pushing the same version twice creates no duplicates: record ids are row ids.

    Parameters
    ----------
    store
        The dataset store holding ``ref``.
    api_url, api_key
        The Argilla server and an owner's or admin's key.
    dataset
        Argilla dataset name; ``None`` uses the store dataset's name.
    workspace, question, rationale, seed
        As in :func:`push_frame`.

    Example
    -------
    >>> push(Store("datasets"), "support-prefs@2", api_url="http://127.0.0.1:6900", api_key=key)
    """
    name, version = store.resolve(ref)
    kind = store.kind(f"{name}@{version}")
    if kind != "preference":
        raise ArgillaError(f"`label push` needs a preference dataset; {name}@{version} holds {kind} rows.")
    frame = store.kept(f"{name}@{version}")
    client = connect(api_url, api_key)
    return push_frame(
        frame,
        client=client,
        ref=f"{name}@{version}",
        dataset=dataset or name,
        workspace=workspace,
        question=question,
        rationale=rationale,
        seed=seed,
    )
