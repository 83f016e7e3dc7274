"""``dedup_semantic``'s partitioned search (SemDeDup, Abbas et al. 2023): seeded spherical k-means cuts the
embeddings into partitions and pairs are searched only within a partition, so the work is a sum of
``n_i^2`` instead of ``N^2`` and each partition can be searched on its own worker. Unlike SemDeDup, rows
near a border are searched in both partitions (``margin``): every pair found is an exact-search pair,
and few are missed."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

from curate.stages._similar_pairs import exact_pairs, ivf_pairs

__all__ = ["MapPartitions", "PartitionSearch", "kmeans_partitions", "local_map", "partition_pairs"]

_TRAIN_PER_CENTROID = 256  # k-means trains on at most 256 x k rows (a seeded sample): faiss's own default cap


def kmeans_partitions(x: np.ndarray, k: int, *, seed: int, margin: float, iterations: int = 20) -> list[np.ndarray]:
    """Row indices of ``x`` (unit vectors) in each of at most ``k`` partitions of a seeded spherical k-means
    (faiss, trained on a seeded sample): each row's nearest centroid, and also its second nearest when
    that centroid's cosine is within ``margin`` of the nearest one's (the row sits near the border, where
    its duplicates may have fallen on the other side). Empty partitions are dropped; indices are sorted."""
    import faiss

    if k <= 1 or len(x) <= k:
        return [np.arange(len(x))]
    x = np.ascontiguousarray(x, dtype=np.float32)
    sample = np.sort(np.random.default_rng(seed).permutation(len(x))[: _TRAIN_PER_CENTROID * k])
    kmeans = faiss.Kmeans(x.shape[1], k, niter=iterations, seed=seed, spherical=True, verbose=False,
                          max_points_per_centroid=_TRAIN_PER_CENTROID)  # fmt: skip
    kmeans.train(x[sample])
    cosine, nearest = kmeans.index.search(x, 2)  # (N, 2): the two most similar centroids, most similar first
    border = np.flatnonzero(cosine[:, 0] - cosine[:, 1] <= margin)
    labels = np.concatenate([nearest[:, 0], nearest[border, 1]])
    members = np.concatenate([np.arange(len(x)), border])
    order = np.lexsort((members, labels))  # by partition, then row
    bounds = np.searchsorted(labels[order], np.arange(k + 1))
    return [members[order[a:b]] for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]


class PartitionSearch:
    """Pairs ``(i, j)``, ``i < j``, of one partition's vectors with cosine >= ``threshold``: exact up to
    ``exact_max_rows`` rows (``search: auto``) or always (``exact``), a faiss IVF index otherwise. A plain
    picklable object, so an engine can ship it to a worker."""

    def __init__(self, *, threshold: float, search: str, exact_max_rows: int, nprobe: int, seed: int) -> None:
        self.threshold, self.search, self.exact_max_rows = threshold, search, exact_max_rows
        self.nprobe, self.seed = nprobe, seed

    def method(self, rows: int) -> str:
        """``exact`` or ``faiss`` for a partition of ``rows`` rows."""
        if self.search != "auto":
            return self.search
        return "exact" if rows <= self.exact_max_rows else "faiss"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if len(x) < 2:
            return np.empty((0, 2), dtype=np.int64)
        if self.method(len(x)) == "exact":
            return exact_pairs(x, self.threshold)[0]
        return ivf_pairs(x, self.threshold, nprobe=self.nprobe, seed=self.seed)[0]


# `map_partitions(search, x, parts)` applies `search` to `x[p]` for each `p` of `parts` and returns the results in
# order: the local engine loops in this process (`local_map`), the ray engine runs one task per partition.
MapPartitions = Callable[[PartitionSearch, np.ndarray, Sequence[np.ndarray]], Iterable[np.ndarray]]


def local_map(search: PartitionSearch, x: np.ndarray, parts: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The local engine's :data:`MapPartitions`: one partition after the other, in this process."""
    return [search(x[p]) for p in parts]


def partition_pairs(
    x: np.ndarray, parts: list[np.ndarray], search: PartitionSearch, *, map_partitions: MapPartitions
) -> np.ndarray:
    """Pairs ``i < j`` of rows of ``x`` found by ``search`` within any partition (``(k, 2)`` row indices of
    ``x``, each pair once although a border row's pair can be found in two partitions)."""
    found = map_partitions(search, x, parts)
    pairs = [p[local] for p, local in zip(parts, found, strict=True) if len(local)]  # p is sorted: i < j stays
    if not pairs:
        return np.empty((0, 2), dtype=np.int64)
    return np.unique(np.concatenate(pairs).astype(np.int64), axis=0) if len(parts) > 1 else pairs[0]
