"""Connecting to an Argilla 2.x server, with errors that say what to do, plus the raw REST reads.

Raw REST is used where the SDK 2.8.0 loses information or crashes: reading responses (the
SDK crashes on a response whose ``values`` is null and drops RankingQuestion ranks) and
listing users' names (the SDK hides fields). Everything else goes through the SDK.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from curate.argilla.errors import ArgillaError
from curate.argilla.server import health

if TYPE_CHECKING:
    import argilla as rg

__all__ = ["connect", "find_dataset", "iter_records", "upload_records", "usernames"]

log = logging.getLogger(__name__)

_PAGE = 1000  # the server's maximum page size for record listing


def _sdk() -> Any:
    try:
        import argilla
    except ImportError as exc:
        raise ArgillaError(
            f"The Argilla SDK is not installed ({exc}). Install it with: pip install 'curate[argilla]'"
        ) from None
    return argilla


def connect(api_url: str, api_key: str | None, *, timeout: int = 60) -> rg.Argilla:
    """An SDK client for ``api_url``, after checking that a server answers and accepts the key.

    Parameters
    ----------
    api_url
        Base URL of an Argilla 2.x server, e.g. ``http://127.0.0.1:6900``.
    api_key
        An owner's or admin's API key (annotators cannot create datasets or read all answers);
        ``None`` fails with an error naming ``api_url`` and ``ARGILLA_API_KEY``. Callers pick it by
        :mod:`curate.credentials`, so it only ever goes to the URL configured beside it.
    timeout
        Seconds per HTTP request.

    Raises
    ------
    ArgillaError
        Nothing answers at ``api_url``, or the key is rejected.
    """
    rg = _sdk()
    if not api_key:
        raise ArgillaError(f"No Argilla API key for {api_url}: set ARGILLA_API_KEY.")
    if health(api_url, timeout=min(5.0, timeout)) is None:
        raise ArgillaError(
            f"No Argilla server answers at {api_url}. Start one with `curate argilla serve`, "
            "or set ARGILLA_API_URL to a running Argilla 2.x deployment."
        )
    try:
        client = rg.Argilla(api_url=api_url, api_key=api_key, timeout=timeout, retries=1)
        client.http_client.get("/api/v1/me").raise_for_status()
    except Exception as exc:  # noqa: BLE001 - the SDK and httpx raise many unrelated types
        raise ArgillaError(
            f"Argilla at {api_url} refused the API key ({type(exc).__name__}: {exc}). "
            "Check ARGILLA_API_KEY: it must belong to an owner or admin."
        ) from None
    return client


def find_dataset(client: rg.Argilla, name: str, workspace: str) -> rg.Dataset | None:
    """The dataset ``name`` in ``workspace``, or None when it does not exist."""
    if client.workspaces(workspace) is None:
        raise ArgillaError(
            f"Argilla at {client.api_url} has no workspace {workspace!r}; "
            f"known: {', '.join(w.name for w in client.workspaces) or 'none'}. Pass --workspace."
        )
    with warnings.catch_warnings():  # the SDK warns when a dataset is not found
        warnings.simplefilter("ignore")
        return client.datasets(name=name, workspace=workspace)


def iter_records(client: rg.Argilla, dataset_id: Any, *, responses: bool) -> Iterator[dict]:
    """Every record of a dataset as the server's JSON (``external_id`` is our row id)."""
    offset = 0
    params: dict[str, Any] = {"include": ["responses"]} if responses else {}
    while True:
        reply = client.http_client.get(
            f"/api/v1/datasets/{dataset_id}/records", params={**params, "offset": offset, "limit": _PAGE}
        )
        reply.raise_for_status()
        items = reply.json()["items"]
        yield from items
        if len(items) < _PAGE:
            return
        offset += len(items)


def usernames(client: rg.Argilla) -> dict[str, str]:
    """User id -> username for every user the key may list ({} when it may not)."""
    reply = client.http_client.get("/api/v1/users")
    if reply.status_code != 200:
        return {}
    return {u["id"]: u["username"] for u in reply.json()["items"]}


def upload_records(client: rg.Argilla, ds: rg.Dataset, records: list[rg.Record]) -> None:
    """Upsert records in bulk; ``ds.records.log`` without its stderr progress bar and batch-size warning."""
    api = client.api.records
    for start in range(0, len(records), api.MAX_RECORDS_PER_UPSERT_BULK):
        batch = records[start : start + api.MAX_RECORDS_PER_UPSERT_BULK]
        for record in batch:
            record.dataset = ds
        api.bulk_upsert(dataset_id=ds.id, records=[record.api_model() for record in batch])
        log.debug("sent records %d-%d of %d to %s", start, start + len(batch), len(records), ds.name)
