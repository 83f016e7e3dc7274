"""Per-stage results under the store's ``_cache/stages/``, so ``curate run --resume`` can skip them.

Each stage's result (kept rows, removed rows, stats row) is one folder named by a key that
chains everything it depends on: the input fingerprint (the input files' sha256, the stored
parents, the sources as configured), then for each stage its id, name, config, the curate
version and the sha256 of the stage's module source. A stage's key includes every earlier
stage's, so changing one stage invalidates it and all after it.

Every run writes its stages' results (written to a temp folder, then renamed into place, so a
kill never leaves half an entry); a run that commits deletes the entries it used, so the cache
only holds the stages of runs that failed or were killed. Only ``--resume`` reads it.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import shutil
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from collections.abc import Callable

import polars as pl

from curate import __version__
from curate.stages.base import StageResult
from curate.stats import StageStats

if TYPE_CHECKING:
    from rich.console import Console

    from curate.config import StageSpec
    from curate.stages.base import Stage, StageContext

RunStage = Callable[["Stage", pl.DataFrame, "StageContext"], tuple[StageResult, StageStats]]

__all__ = ["StageCache", "cache_dir", "clear_cache", "input_fingerprint"]

log = logging.getLogger(__name__)


def cache_dir(store_root: str | Path) -> Path:
    """The folder of cached stage results of the store at ``store_root``."""
    return Path(store_root) / "_cache" / "stages"


def clear_cache(store_root: str | Path) -> int:
    """Delete every cached stage result of the store at ``store_root``; returns how many."""
    folder = cache_dir(store_root)
    entries = [p for p in folder.iterdir() if p.is_dir()] if folder.is_dir() else []
    for entry in entries:
        shutil.rmtree(entry, ignore_errors=True)
    return len(entries)


def input_fingerprint(
    *, files: list[dict], parents: list[dict], sources: list[Any], kind: str, benchmarks_dir: Any = None
) -> str:
    """The key every stage key chains from: what was read, how, as which kind, and the
    benchmarks folder stages may read."""
    described = {
        "files": files,
        "parents": parents,
        "sources": [s.model_dump(mode="json") for s in sources],
        "kind": kind,
        "benchmarks_dir": str(benchmarks_dir or ""),
    }
    return _sha256(json.dumps(described, sort_keys=True, default=str))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _source_hash(stage: Stage) -> str:
    """The stage's module source (its code version beside curate's own)."""
    try:
        return _sha256(inspect.getsource(inspect.getmodule(type(stage))))
    except (OSError, TypeError):
        return "unknown"


@dataclass
class StageCache:
    """Cached stage results of one store.

    Parameters
    ----------
    root
        ``<store>/_cache/stages``.
    previous
        The key the next stage chains from: :func:`input_fingerprint` before the first stage.
    resume
        Read entries (``curate run --resume``); without it, entries are only written. Reading
        stops at the first stage that is not cached: the stages after it run again.
    console
        Where "reused stage ..." lines go; ``None``: the log only.
    """

    root: Path
    previous: str
    resume: bool = False
    console: Console | None = None
    used: list[Path] = field(default_factory=list)
    pending: list[threading.Thread] = field(default_factory=list)

    def key(self, spec: StageSpec, stage: Stage) -> str:
        """The key of ``spec`` run on the output of the previous stage."""
        parts = [self.previous, spec.id, spec.name, spec.config.model_dump_json(), __version__, _source_hash(stage)]
        return _sha256("\x1e".join(parts))[:32]

    def run(
        self, run_stage: RunStage, stage: Stage, frame: pl.DataFrame, ctx: StageContext, *, spec: StageSpec
    ) -> tuple[StageResult, StageStats]:
        """``run_stage(stage, frame, ctx)``, or its cached result when resuming; the result is cached."""
        key = self.previous = self.key(spec, stage)
        cached = self.load(key)
        if cached is not None:
            stats = cached[1]
            line = f"resume: reused stage {spec.id!r} from the cache ({stats.rows_kept} kept, {stats.rows_removed} removed)"
            log.info(line)
            if self.console is not None:
                self.console.print(line, highlight=False, markup=False)
            self.used.append(self.root / key)
            return cached
        self.resume = False  # stages after one that ran again must run again too
        result, stats = run_stage(stage, frame, ctx)
        self.save(key, result, stats)
        return result, stats

    def load(self, key: str) -> tuple[StageResult, StageStats] | None:
        """The cached result under ``key``; ``None`` when absent or when not resuming."""
        entry = self.root / key
        if not self.resume or not (entry / "stats.json").is_file():
            return None
        saved = json.loads((entry / "stats.json").read_text(encoding="utf-8"))
        result = StageResult(
            kept=pl.read_ipc(entry / "kept.arrow"),
            removed=pl.read_ipc(entry / "removed.arrow"),
            stats=saved["stats"]["extra"],
            added=saved["stats"]["rows_added"],
            kind=saved["kind"],
        )
        return result, StageStats(**saved["stats"])

    def save(self, key: str, result: StageResult, stats: StageStats) -> None:
        """Store ``result`` under ``key`` atomically (temp folder, then rename), in a thread
        that overlaps the next stage (the process waits for it at exit, also after a failure)."""
        writer = threading.Thread(target=self._write, args=(key, result, stats), name=f"stage-cache-{key}")
        writer.start()
        self.pending.append(writer)

    def wait(self) -> None:
        """Wait until every entry this run started writing is in place."""
        for writer in self.pending:
            writer.join()
        self.pending.clear()

    def _write(self, key: str, result: StageResult, stats: StageStats) -> None:
        entry = self.root / key
        if entry.exists():
            self.used.append(entry)
            return
        temp = self.root / f".tmp-{uuid.uuid4().hex}"
        temp.mkdir(parents=True)
        # Arrow IPC with lz4: close to memory speed (parquet encoding costs seconds per million rows)
        result.kept.write_ipc(temp / "kept.arrow", compression="lz4")
        result.removed.write_ipc(temp / "removed.arrow", compression="lz4")
        saved = {"stats": stats.to_dict(), "kind": result.kind}
        (temp / "stats.json").write_text(json.dumps(saved, default=str), encoding="utf-8")
        try:
            os.replace(temp, entry)
        except OSError:  # another run wrote the same key first: same content
            shutil.rmtree(temp, ignore_errors=True)
            return
        self.used.append(entry)

    def forget_used(self) -> None:
        """Delete the entries this run wrote or reused (its version is committed; nothing to resume)."""
        self.wait()
        for entry in self.used:
            shutil.rmtree(entry, ignore_errors=True)
        self.used.clear()
