"""``serve``: load the base and its adapters, then answer OpenAI-compatible requests until stopped."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from curate.extras import require_extra
from curate.store import Store

from ._sources import resolve_sources

__all__ = ["serve"]

log = logging.getLogger(__name__)


def serve(
    sources: Sequence[str],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    store: str | Path = "datasets",
    feedback_dataset: str = "feedback",
    runs_root: str | Path = "runs",
    flush_every: int = 64,
    flush_seconds: float = 10.0,
) -> None:
    """Serve one base model and any number of LoRA adapter runs on it, until interrupted.

    Parameters
    ----------
    sources
        The first is a model folder, a full-weights run or an adapter run; the rest are adapter
        runs on the same base (run ids under ``runs_root`` or run folders).
    host, port
        Where to listen; the default host accepts local connections only.
    store, feedback_dataset
        Every completion and its feedback are committed to this ``feedback``-kind dataset.
    runs_root
        Folder of the run registry.
    flush_every, flush_seconds
        Commit the log every this many completions, or this many seconds, and on shutdown.

    Raises
    ------
    ConfigError
        A source is not servable, or the runs were trained on different bases (checked before loading).
    StoreError
        ``feedback_dataset`` exists and was not written by curate serve.
    """
    require_extra("serve", what="curate serve")
    import uvicorn

    from .app import create_app
    from .feedback import FeedbackLog
    from .models import ServedModels

    resolved = resolve_sources(sources, runs_root=runs_root)
    feedback = FeedbackLog(Store(store), feedback_dataset, every=flush_every, seconds=flush_seconds)
    models = ServedModels.load(resolved)
    log.warning("serving %s on http://%s:%d/v1 (log: %s)", ", ".join(models.names), host, port, feedback_dataset)
    uvicorn.run(create_app(models, feedback), host=host, port=port, log_level="info")
