"""``dedup_semantic`` on Ray: embeddings on an actor pool (each actor loads the encoder once), the
k-means partitions on the driver, each partition's search in a Ray task, then clusters and keep rule
on the driver (:meth:`DedupSemantic.finish`, the local code: only where the searches run changes)."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pyarrow as pa

from curate.engines.ray._blocks import to_dataset
from curate.stages._semantic_partitions import local_map
from curate.stats import Phases

if TYPE_CHECKING:
    from collections.abc import Sequence

    from curate.stages._semantic_partitions import PartitionSearch
    from curate.stages.base import StageContext, StageResult
    from curate.stages.dedup_semantic import DedupSemantic

__all__ = ["semantic"]


class _Embedder:
    """One actor: the stage's encoder, loaded on the first batch and kept. The stage is a class
    attribute (see :func:`_embedder`), not a constructor argument, which Ray would keep in the
    object store and warn about on actor restarts."""

    stage: DedupSemantic

    def __call__(self, batch: pa.Table) -> pa.Table:
        vectors = self.stage.vectors(batch["text"].to_pylist(), cache_dir=None)  # (n, dim) float32
        flat = pa.array(vectors.ravel())
        return pa.table({"vector": pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])})


def _embedder(stage: DedupSemantic) -> type[_Embedder]:
    return type("Embedder", (_Embedder,), {"stage": stage})


def _search(search: PartitionSearch, x: np.ndarray) -> np.ndarray:
    return search(x)


def map_partitions(search: PartitionSearch, x: np.ndarray, parts: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Each partition's search in its own Ray task (its vectors shipped through the object store), at
    most two tasks per cluster CPU in flight; the results in partition order. A single partition is
    searched on the driver: a 1-CPU task gets one BLAS thread (at 100k rows 18.7-42 s against 18-25 s
    on the driver, docs/dedup.md)."""
    import ray

    if len(parts) == 1:
        return local_map(search, x, parts)

    task = ray.remote(_search).options(num_cpus=1)
    search_ref = ray.put(search)
    window = 2 * max(1, int(ray.cluster_resources().get("CPU", 1)))
    refs = []
    for i, p in enumerate(parts):
        if i >= window:
            ray.wait(refs[i - window : i - window + 1])  # bounds the vectors in flight, not only the tasks
        refs.append(task.remote(search_ref, x[p]))
    return ray.get(refs)


def semantic(stage: DedupSemantic, frame: pl.DataFrame, ctx: StageContext) -> StageResult:
    """The local ``dedup_semantic`` result with the embeddings computed on Ray actors and each
    k-means partition searched in a Ray task.

    The driver holds the frame, the embeddings (dim x 4 bytes a row) for the k-means and the
    similarity detail, and the pairs found.
    """
    import ray

    phases = Phases()
    text, rows = stage.text(frame, ctx.kind)
    with phases("embed"):
        if len(rows):
            workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
            with warnings.catch_warnings():  # Ray 2.60 deprecates passing max_restarts and names no replacement
                warnings.filterwarnings("ignore", message=".*ray_remote_args.*")
                out = to_dataset(pl.DataFrame({"text": text.gather(rows)})).map_batches(
                    _embedder(stage), batch_format="pyarrow",
                    # a restartable actor whose constructor arguments sit in the object store makes
                    # Ray print an error line on every run (ray-project/ray#53727)
                    max_restarts=0,
                    batch_size=max(256, stage.config.batch_size), concurrency=(1, workers),
                )
            parts = [t["vector"].combine_chunks() for t in out.iter_batches(batch_format="pyarrow", batch_size=None)]
            vectors = np.concatenate([p.flatten().to_numpy().reshape(len(p), p.type.list_size) for p in parts])
        else:
            vectors = np.zeros((0, 1), dtype=np.float32)
    return stage.finish(frame, ctx, text=text, rows=rows, vectors=vectors, phases=phases, map_partitions=map_partitions)
