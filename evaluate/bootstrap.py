"""Bootstrap confidence intervals: for one metric, and for the difference between two systems."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Interval", "bootstrap_ci", "paired_bootstrap_diff"]

Statistic = Callable[[np.ndarray], float]


@dataclass(frozen=True)
class Interval:
    """A point estimate with a percentile bootstrap interval."""

    value: float
    low: float
    high: float
    n: int
    confidence: float

    def contains(self, x: float) -> bool:
        """Whether ``x`` lies inside the interval (ends included)."""
        return self.low <= x <= self.high

    def to_dict(self) -> dict[str, float | int]:
        """JSON-ready form."""
        return {"value": self.value, "low": self.low, "high": self.high, "n": self.n, "confidence": self.confidence}


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x))


def bootstrap_ci(
    values: Sequence[float],
    *,
    statistic: Statistic | None = None,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap interval of a statistic over per-example values.

    Parameters
    ----------
    values
        One value per example (a score, 0/1 correctness, a token loss...).
    statistic
        Maps a resampled 1-D array to a float; ``None`` means the mean. For a statistic over
        rows of several columns (macro-F1), pass indices as ``values`` and close over the data.
    resamples
        Number of resamples with replacement.
    confidence
        Two-sided coverage, e.g. 0.95 for the 2.5th..97.5th percentiles.
    seed
        Seed of the resampling; the same seed and values give the same interval.

    Examples
    --------
    >>> bootstrap_ci([1, 0, 1, 1], resamples=200).value
    0.75
    """
    stat = statistic or _mean
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        nan = float("nan")
        return Interval(value=nan, low=nan, high=nan, n=0, confidence=confidence)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, arr.size, size=(resamples, arr.size))
    draws = np.array([stat(arr[row]) for row in idx])
    alpha = (1.0 - confidence) / 2
    low, high = np.quantile(draws, [alpha, 1 - alpha])
    return Interval(value=stat(arr), low=float(low), high=float(high), n=int(arr.size), confidence=confidence)


def paired_bootstrap_diff(
    a: Sequence[float],
    b: Sequence[float],
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Interval of ``mean(a) - mean(b)`` resampling examples jointly (both systems on the same rows).

    The difference is significant at this confidence when the interval excludes 0.
    """
    a_arr, b_arr = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a_arr.shape != b_arr.shape:
        raise ValueError(f"paired bootstrap needs aligned scores, got {a_arr.size} and {b_arr.size} values.")
    return bootstrap_ci(a_arr - b_arr, resamples=resamples, confidence=confidence, seed=seed)
