"""LSH banding for ``dedup_minhash``: choosing bands x rows, the S-curve, and candidate pairs."""

from __future__ import annotations

import numpy as np

from curate.stages._minhash import sorted_unique

__all__ = ["band_keys", "band_pairs", "choose_bands", "estimated_jaccard", "has_tokens", "s_curve_errors", "unique_pairs"]


def _integral(f, lo: float, hi: float, steps: int = 2_000) -> float:
    x = np.linspace(lo, hi, steps + 1)
    y = f(x)
    return float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2)


def s_curve_errors(threshold: float, bands: int, rows: int) -> tuple[float, float]:
    """Areas under the LSH S-curve ``P(s) = 1 - (1 - s**rows)**bands``.

    Returns ``(false_positive, false_negative)``: the integral of ``P`` over ``[0, threshold]``
    (pairs below the threshold that still become candidates) and of ``1 - P`` over
    ``[threshold, 1]`` (pairs above it that are missed), as in datasketch's ``_optimal_param``.
    """

    def p(s: np.ndarray) -> np.ndarray:
        return 1.0 - (1.0 - s**rows) ** bands

    return _integral(p, 0.0, threshold), _integral(lambda s: 1.0 - p(s), threshold, 1.0)


def choose_bands(threshold: float, num_perm: int, *, fp_weight: float = 0.5) -> tuple[int, int]:
    """The ``(bands, rows)`` with ``bands * rows <= num_perm`` that minimises the weighted error
    ``fp_weight * false_positive + (1 - fp_weight) * false_negative`` (datasketch's rule)."""
    best, best_err = (1, 1), float("inf")
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            fp, fn = s_curve_errors(threshold, bands, rows)
            err = fp_weight * fp + (1 - fp_weight) * fn
            if err < best_err - 1e-12:
                best, best_err = (bands, rows), err
    return best


def has_tokens(sig: np.ndarray) -> np.ndarray:
    """Rows whose signature saw at least one shingle (only those take part in LSH)."""
    return (sig != np.iinfo(np.uint32).max).any(axis=1)


def estimated_jaccard(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Estimated Jaccard of each pair of signatures ``(x[i], y[i])``: the share of equal values."""
    return (x == y).mean(axis=1)


def band_keys(sig: np.ndarray, *, bands: int, rows: int, seed: int) -> np.ndarray:
    """``(n, bands)`` uint64 keys: each band's ``rows`` signature values folded into one key."""
    coef = np.random.default_rng(seed).integers(0, 2**63, size=rows, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    keys = np.zeros((len(sig), bands), dtype=np.uint64)
    for band in range(bands):
        for r in range(rows):
            keys[:, band] += sig[:, band * rows + r].astype(np.uint64) * coef[r]
    return keys


def unique_pairs(pairs: np.ndarray, n: int) -> np.ndarray:
    """Unique ``(k, 2)`` pairs of row indices below ``n``, each as ``(low, high)``, sorted."""
    if not len(pairs):
        return np.empty((0, 2), dtype=np.int64)
    n = np.int64(n)
    code = sorted_unique(pairs.min(axis=1).astype(np.int64) * n + pairs.max(axis=1))
    return np.stack([code // n, code % n], axis=1)


def band_pairs(sig: np.ndarray, rows_in_lsh: np.ndarray, *, bands: int, rows: int, seed: int) -> np.ndarray:
    """Candidate pairs: rows that share all ``rows`` values of at least one band.

    Every band's values are folded into one 64-bit key (:func:`band_keys`); inside each group
    of equal keys every member is paired with the group's first (lowest) row, which is enough
    for connected components. Returns unique pairs ``(k, 2)`` of row indices with
    ``[:, 0] < [:, 1]``.
    """
    if len(rows_in_lsh) < 2:
        return np.empty((0, 2), dtype=np.int64)
    keys = band_keys(sig[rows_in_lsh], bands=bands, rows=rows, seed=seed)
    found = []
    for band in range(bands):
        key = keys[:, band]
        order = np.argsort(key, kind="stable")  # stable: the first of a run is its lowest row
        sorted_key = key[order]
        starts = np.concatenate([[True], sorted_key[1:] != sorted_key[:-1]])
        first = order[starts][np.cumsum(starts) - 1]
        found.append(np.stack([first[~starts], order[~starts]], axis=1))
    pairs = np.concatenate(found) if found else np.empty((0, 2), dtype=np.int64)
    return unique_pairs(rows_in_lsh[pairs], len(sig))
