"""The serving log: every completion and the feedback on it, flushed to a ``feedback``-kind dataset.

Completions and feedback wait in memory and are committed together, as one new version of the
dataset, every ``every`` completions, every ``seconds`` seconds and when the server stops. A
flush that fails (the store is read-only, another writer committed first) commits nothing and
keeps everything for the next one; what the last flush at shutdown cannot commit is written to a
JSONL file in the ``prompt`` / ``completion`` format the ``messages`` reader reads as feedback,
so it can still be imported. The row format is in docs/generation.md (``curate serve``).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from curate.errors import StoreError
from curate.store import Store

from ._feedback_commit import check_feedback_dataset, commit_feedback, logged_request_ids, merge_feedback

__all__ = ["FeedbackLog"]

log = logging.getLogger(__name__)


class FeedbackLog:
    """Pending completions and feedback for one dataset, and the thread that flushes them.

    Parameters
    ----------
    store
        The dataset store.
    name
        The ``feedback`` dataset; created by the first flush. An existing one must have been
        written by ``curate serve`` (checked here, before the server starts).
    every
        Flush once this many completions wait.
    seconds
        Flush at least this often while anything waits.
    """

    def __init__(self, store: Store, name: str, *, every: int = 64, seconds: float = 10.0) -> None:
        check_feedback_dataset(store, name)
        self.store, self.name, self.every, self.seconds = store, name, every, seconds
        self._known = logged_request_ids(store, name)
        self._completions: list[dict[str, Any]] = []
        self._updates: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()  # guards the pending lists
        self._flushing = threading.Lock()  # one flush at a time
        self._wake, self._stop = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None

    def record(self, completions: list[dict[str, Any]]) -> None:
        """Log the rows of one response (one per choice, each with ``meta.request_id``)."""
        with self._lock:
            self._completions.extend(completions)
            self._known.update(str(c["meta"]["request_id"]) for c in completions)
            if len(self._completions) >= self.every:
                self._wake.set()

    def feedback(self, request_id: str, fields: Mapping[str, Any]) -> bool:
        """Attach feedback to a logged completion (pending or committed); False when the id is unknown."""
        stamped = {**fields, "feedback_ts": _now()}
        with self._lock:
            if request_id not in self._known:
                return False
            pending = [c for c in self._completions if c["meta"]["request_id"] == request_id]
            for c in pending:
                c["feedback"] = merge_feedback(c.get("feedback"), stamped)
            if not pending:
                self._updates[request_id] = {**self._updates.get(request_id, {}), **stamped}
        return True

    def flush(self) -> int | None:
        """Commit what waits as one new version; returns it, or None when nothing waited.

        Raises
        ------
        StoreError
            The commit failed; nothing was committed and everything stays pending.
        """
        with self._flushing:
            with self._lock:
                completions, updates = self._completions, self._updates
                self._completions, self._updates = [], {}
            if not completions and not updates:
                return None
            try:
                version = commit_feedback(self.store, self.name, completions=completions, updates=updates)
            except BaseException:
                with self._lock:  # put back in front of what arrived meanwhile
                    self._completions = completions + self._completions
                    for rid, fields in updates.items():
                        self._updates[rid] = {**fields, **self._updates.get(rid, {})}
                raise
        log.info("serve: %d completions, %d feedback updates -> %s@%d", len(completions), len(updates), self.name,
                 version)  # fmt: skip
        return version

    # -- the background thread -------------------------------------------------------------

    def start(self) -> None:
        """Flush in a background thread every ``seconds`` (sooner when ``every`` completions wait)."""
        self._thread = threading.Thread(target=self._loop, name="curate-serve-flush", daemon=True)
        self._thread.start()

    def close(self, *, spill_dir: Path | None = None) -> None:
        """Stop the thread and flush what waits; what cannot be committed goes to a JSONL file in ``spill_dir``."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        try:
            self.flush()
        except StoreError as exc:
            path = self._spill(spill_dir or self.store.cache_dir("serve"))
            log.error("serve: the last flush failed (%s); the pending rows were written to %s", exc, path)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.seconds)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.flush()
            except StoreError as exc:
                log.warning("serve: flush to %s failed, retrying later: %s", self.name, exc)

    def _spill(self, folder: Path) -> Path:
        """Pending completions as prompt-completion JSONL (readable as feedback); pending feedback beside it."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.name}-unflushed-{datetime.now(UTC):%Y%m%d-%H%M%S}.jsonl"
        with self._lock:
            lines = [_log_line(c) for c in self._completions]
            path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
            if self._updates:
                updates = json.dumps(self._updates, ensure_ascii=False)
                path.with_suffix(".feedback.json").write_text(updates, encoding="utf-8")
        return path


def _log_line(record: dict[str, Any]) -> dict[str, Any]:
    """A logged completion as one line of the prompt-completion log format (docs/generation.md)."""
    feedback = record.get("feedback")
    line = {key: record.get(key) for key in ("prompt", "completion", "model", "ts")}
    return {**record["meta"], **line, "feedback": json.loads(feedback) if feedback else None}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
