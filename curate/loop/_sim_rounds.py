"""One simulated annotator round: train the head on the labeled rows, score the test set, pick the next rows."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from curate.loop.strategies import diverse_pick, novelty, random_pick, uncertainty
from curate.train.head import fit_head
from curate.train.recipe import Recipe


@dataclass
class Fit:
    """A head trained on some labeled rows: its test accuracy and its class probabilities over the pool."""

    accuracy: float
    pool_probs: np.ndarray  # (pool rows, classes seen in the labeled rows)


@contextmanager
def single_threaded() -> Iterator[None]:
    """Torch and BLAS / OpenMP on one thread, restored on exit.

    The head is one small linear layer and k-means sees a few thousand rows: synchronising threads costs more
    than the work (measured on 2 busy cores: a 300-row head fit 10.5 s with 2 threads, 0.24 s with 1; k-means
    of 1,400 rows into 100 clusters 4.1 s against 0.2 s).
    """
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(before)


def fit_and_score(
    labeled: np.ndarray,
    *,
    pool_x: np.ndarray,
    pool_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    recipe: Recipe,
) -> Fit:
    """Train the recipe's head on ``pool_x[labeled]`` (gold labels) and evaluate it on the test rows.

    Like a ``head`` run, the head's classes are the labels seen in its training rows; a test row of
    another class counts as wrong. No validation split: every label is spent on training.
    """
    import torch

    seen, y = np.unique(pool_y[labeled], return_inverse=True)
    head, _, _ = fit_head(torch.from_numpy(pool_x[labeled]), torch.from_numpy(y.astype(np.int64)),
                          num_labels=len(seen), recipe=recipe)  # fmt: skip
    with torch.no_grad():
        head.eval()
        test_pred = seen[head(torch.from_numpy(test_x)).argmax(-1).numpy()]
        pool_probs = torch.softmax(head(torch.from_numpy(pool_x)), dim=-1).numpy()
    return Fit(accuracy=float((test_pred == test_y).mean()), pool_probs=pool_probs)


def select(
    strategy: str, *, fit: Fit, labeled: np.ndarray, pool_x: np.ndarray, budget: int, seed: int
) -> np.ndarray:
    """``budget`` pool rows outside ``labeled`` to label next, chosen by ``strategy``."""
    candidates = np.setdiff1d(np.arange(len(pool_x)), labeled)
    if strategy == "random":
        return candidates[random_pick(len(candidates), budget, seed=seed)]
    if strategy == "novelty":
        scores = novelty(pool_x[candidates], pool_x[labeled])
    else:
        kind = "margin" if strategy == "diversity" else strategy
        scores = uncertainty(fit.pool_probs[candidates], kind)  # type: ignore[arg-type]
    if strategy == "diversity":
        return candidates[diverse_pick(pool_x[candidates], scores, budget, seed=seed)]
    return candidates[np.argsort(-scores, kind="stable")[:budget]]
