"""Active-learning scores: which unlabeled rows are worth an annotator's time.

Pure numpy (plus scikit-learn's k-means for `diverse_pick`), shared by `curate loop` (select step)
and `curate loop simulate`. Every score is "higher = more worth labeling".
"""

from __future__ import annotations

import warnings
from typing import Literal, get_args

import numpy as np

__all__ = ["UNCERTAINTY_KINDS", "Uncertainty", "diverse_pick", "novelty", "random_pick", "uncertainty"]

Uncertainty = Literal["least_confidence", "margin", "entropy"]
UNCERTAINTY_KINDS: tuple[str, ...] = get_args(Uncertainty)

# rows per block in `novelty`: a (block x reference) float32 matrix, 4096 x 50k = 800 MB at most
_BLOCK = 4096


def uncertainty(probs: np.ndarray, kind: Uncertainty) -> np.ndarray:
    """How unsure a classifier is about each row, from its class probabilities (higher = more uncertain).

    Parameters
    ----------
    probs
        ``(rows, classes)`` probabilities; each row sums to 1.
    kind
        ``least_confidence``: ``1 - max p``. ``margin``: ``1 - (p1 - p2)``, where p1 and p2 are the two
        largest probabilities (a single class gives margin 1, i.e. uncertainty 0). ``entropy``:
        ``-sum p ln p`` in nats (``0 ln 0 = 0``).

    Examples
    --------
    >>> uncertainty(np.array([[0.5, 0.3, 0.2]]), "margin")
    array([0.8])
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] == 0:
        raise ValueError(f"uncertainty needs a (rows, classes) probability matrix; got shape {probs.shape}.")
    if kind == "least_confidence":
        return 1.0 - probs.max(axis=1)
    if kind == "margin":
        if probs.shape[1] == 1:
            return np.zeros(len(probs))
        top2 = -np.partition(-probs, 1, axis=1)[:, :2]
        return 1.0 - (top2[:, 0] - top2[:, 1])
    if kind == "entropy":
        logs = np.log(np.where(probs > 0, probs, 1.0))
        return -(probs * logs).sum(axis=1)
    raise ValueError(f"unknown uncertainty kind {kind!r}; use one of {', '.join(UNCERTAINTY_KINDS)}.")


def novelty(embeddings: np.ndarray, reference_embeddings: np.ndarray, *, block: int = _BLOCK) -> np.ndarray:
    """How far each row is from a reference set: ``1 - max cosine`` to any reference row (0 = a copy; up to 2).

    Parameters
    ----------
    embeddings
        ``(rows, dim)`` vectors to score; need not be normalized.
    reference_embeddings
        ``(refs, dim)`` vectors (e.g. the training set). Empty means nothing is known: every row scores 1.
    block
        Rows compared at a time, which bounds memory to ``block x refs`` floats.
    """
    emb = _normalized(embeddings)
    ref = _normalized(reference_embeddings)
    if len(ref) == 0:
        return np.ones(len(emb))
    if emb.shape[1] != ref.shape[1]:
        raise ValueError(f"novelty compares vectors of one size; got {emb.shape[1]} and {ref.shape[1]} dimensions.")
    best = np.empty(len(emb))
    for start in range(0, len(emb), block):
        best[start : start + block] = (emb[start : start + block] @ ref.T).max(axis=1)
    return 1.0 - best


def diverse_pick(embeddings: np.ndarray, scores: np.ndarray, k: int, *, seed: int) -> list[int]:
    """``k`` rows spread over the embedding space, preferring high scores: k-means, then the best of each cluster.

    The candidates are clustered into ``k`` groups (k-means++, seeded); the highest-scoring row of each
    cluster is taken, best cluster first. Empty clusters (duplicate vectors) are filled by the next best
    rows of the other clusters, round by round, so exactly ``min(k, rows)`` distinct rows come back.

    Parameters
    ----------
    embeddings
        ``(rows, dim)`` vectors of the candidates.
    scores
        ``(rows,)`` worth of each candidate (e.g. `uncertainty`); ties go to the lower index.
    k
        How many to pick; ``k >= rows`` returns every row, best first.
    seed
        Seed of the k-means initialisation: the same inputs and seed give the same picks.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) != len(embeddings):
        raise ValueError(f"diverse_pick needs one score per row; got {len(scores)} scores for {len(embeddings)} rows.")
    order = _best_first(scores)
    if k >= len(scores):
        return order.tolist()
    if k <= 0:
        return []
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # fewer distinct points than k: handled below
        kmeans = KMeans(n_clusters=k, n_init=1, random_state=seed)
        labels = kmeans.fit_predict(np.asarray(embeddings, dtype=np.float32))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    # each row's rank within its cluster (0 = the cluster's best), then round by round, best first
    within = np.empty(len(order), dtype=np.int64)
    seen: dict[int, int] = {}
    for row in order:
        within[row] = seen.get(labels[row], 0)
        seen[labels[row]] = within[row] + 1
    picked = np.lexsort((rank, within))[:k]
    return picked.tolist()


def random_pick(n: int, k: int, *, seed: int) -> list[int]:
    """``min(k, n)`` distinct row indices out of ``n``, uniformly at random (seeded)."""
    return np.random.default_rng(seed).permutation(n)[: max(k, 0)].tolist()


def _best_first(scores: np.ndarray) -> np.ndarray:
    return np.argsort(-scores, kind="stable")


def _normalized(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"expected a (rows, dim) matrix; got shape {vectors.shape}.")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)
