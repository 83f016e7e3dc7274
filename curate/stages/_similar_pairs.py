"""Pairs of unit vectors whose cosine similarity reaches a threshold: exact or faiss IVF."""

from __future__ import annotations

import numpy as np

__all__ = ["exact_pairs", "ivf_pairs"]


def exact_pairs(x: np.ndarray, threshold: float, *, block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Every pair ``i < j`` with ``x[i] . x[j] >= threshold``, by blockwise matrix products.

    Memory is ``block x N`` floats at a time. Returns ``(pairs (k, 2), cosine (k,))``.
    """
    found, sims = [], []
    for i0 in range(0, len(x), block):
        s = x[i0 : i0 + block] @ x[i0:].T  # (block, N - i0): row i0+a against rows i0..N-1
        a, b = np.nonzero(s >= threshold)
        upper = b > a  # j > i only (b is relative to i0, as a is)
        a, b = a[upper], b[upper]
        found.append(np.stack([a + i0, b + i0], axis=1))
        sims.append(s[a, b])
    if not found:
        return np.empty((0, 2), dtype=np.int64), np.empty(0, dtype=np.float32)
    return np.concatenate(found).astype(np.int64), np.concatenate(sims)


def ivf_pairs(
    x: np.ndarray, threshold: float, *, nprobe: int, seed: int, block: int = 8192
) -> tuple[np.ndarray, np.ndarray]:
    """Approximate :func:`exact_pairs` with a faiss inverted-file index (inner product).

    ``4 * sqrt(N)`` k-means cells (fewer for tiny inputs); each query searches its ``nprobe`` nearest cells, so pairs
    that fall into cells far apart can be missed (rare at the high thresholds of dedup).
    """
    import faiss

    x = np.ascontiguousarray(x, dtype=np.float32)
    nlist = max(1, min(int(4 * np.sqrt(len(x))), len(x) // 39))  # faiss wants >= 39 points per cell
    quantizer = faiss.IndexFlatIP(x.shape[1])
    index = faiss.IndexIVFFlat(quantizer, x.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    sample = np.random.default_rng(seed).permutation(len(x))[: 64 * nlist]
    index.train(x[np.sort(sample)])
    index.add(x)
    index.nprobe = min(nprobe, nlist)
    found, sims = [], []
    for i0 in range(0, len(x), block):
        lims, dist, ids = index.range_search(x[i0 : i0 + block], threshold)
        lims = lims.astype(np.int64)
        rows = np.repeat(np.arange(i0, i0 + len(lims) - 1), np.diff(lims))
        upper = ids > rows
        found.append(np.stack([rows[upper], ids[upper]], axis=1))
        sims.append(dist[upper])
    return np.concatenate(found).astype(np.int64), np.concatenate(sims)
