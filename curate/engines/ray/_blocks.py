"""Polars frames to Ray datasets and back, in order."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    import ray.data

MIN_BLOCK_ROWS = 1_000  # below this, a block costs more in scheduling than it saves


def to_dataset(frame: pl.DataFrame, *, blocks: int | None = None) -> ray.data.Dataset:
    """``frame`` as a Ray dataset of about ``blocks`` blocks (``None``: two per cluster CPU)."""
    import ray
    import ray.data

    blocks = blocks or max(1, 2 * int(ray.cluster_resources().get("CPU", 1)))
    size = max(MIN_BLOCK_ROWS, math.ceil(frame.height / blocks))
    return ray.data.from_arrow([frame.slice(start, size).to_arrow() for start in range(0, frame.height, size)])


def collect(dataset: ray.data.Dataset) -> pl.DataFrame:
    """All rows of ``dataset`` on the driver, in order (the engine sets ``preserve_order``)."""
    tables = [pl.from_arrow(t) for t in dataset.iter_batches(batch_format="pyarrow", batch_size=None)]
    return pl.concat(tables, how="diagonal_relaxed") if tables else pl.DataFrame()
