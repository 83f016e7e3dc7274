"""The ``ray`` engine: reading, row stages, MinHash, semantic dedup and the decontaminate probe on a Ray cluster.

Which stage runs where, and what the driver holds, is listed in docs/engines.md. Every stage
still goes through :meth:`curate.stages.base.Stage.run`, so the stats row, the error context
and the result are the local engine's; only where ``apply`` runs changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from curate.engines.base import Engine
from curate.extras import require_extra

if TYPE_CHECKING:
    from pathlib import Path

    import polars as pl

    from curate.config import SourceConfig
    from curate.formats import SourceRows
    from curate.stages.base import Stage, StageContext, StageResult
    from curate.stats import StageStats

__all__ = ["DISTRIBUTED", "RayEngine"]


def _distributed() -> dict[str, Callable]:
    from curate.engines.ray._decontaminate import decontaminate
    from curate.engines.ray._minhash import minhash
    from curate.engines.ray._rows import map_rows
    from curate.engines.ray._semantic import semantic

    return {"quality": map_rows, "dedup_minhash": minhash, "dedup_semantic": semantic, "decontaminate": decontaminate}


DISTRIBUTED = ("quality", "dedup_minhash", "dedup_semantic", "decontaminate")  # the others run on the driver


class RayEngine(Engine):
    """Reads input files in chunks (:mod:`curate.engines.ray._read`), runs ``quality`` in
    ``map_batches``, ``dedup_minhash``'s signatures and LSH buckets, ``dedup_semantic``'s
    embeddings (actor pool) and partition searches (a task each) and ``decontaminate``'s benchmark
    probe on Ray; every other stage, and the global steps of those (components, k-means, keep rule,
    judging matches, the held-out check), on the driver over the collected frame.

    Parameters
    ----------
    address
        Cluster to join (``ray://head:10001``, ``auto``); ``None`` joins the cluster this process
        already started, or starts a local one with every core.
    chunk_bytes
        Input bytes per reading task for JSONL and Parquet files; ``None``: two tasks per
        cluster CPU, each of 1 to 64 MB.
    """

    name = "ray"

    def __init__(self, *, address: str | None = None, chunk_bytes: int | None = None) -> None:
        require_extra("ray", what="The `ray` engine")
        self.address = address
        self.chunk_bytes = chunk_bytes

    def connect(self) -> None:
        """Join (or start) the cluster once, with Ray's progress bars and INFO logs turned down."""
        import ray
        import ray.data

        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # "first" keep rules and row order equal local
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # its warnings include "progress bars disabled"

    def read_files(self, source: SourceConfig, base_dir: Path) -> SourceRows:
        """The files of one source read and converted on the cluster, chunk by chunk (see docs/engines.md)."""
        from curate.engines.ray._read import read_files

        self.connect()
        return read_files(source, base_dir, chunk_bytes=self.chunk_bytes)

    def run_stage(self, stage: Stage, frame: pl.DataFrame, ctx: StageContext) -> tuple[StageResult, StageStats]:
        apply = _distributed().get(stage.name)
        if apply is None or frame.height == 0:
            return stage.run(frame, ctx)
        self.connect()
        return stage.run(frame, ctx, apply=partial(apply, stage))
