"""Label metrics for classification / intent data: accuracy, macro-F1 and a confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .metrics import normalise_answer

__all__ = ["ConfusionMatrix", "accuracy", "confusion_matrix", "macro_f1", "match_label"]


@dataclass(frozen=True)
class ConfusionMatrix:
    """Counts of (true label, predicted label); ``labels`` orders rows (true) and columns (predicted)."""

    labels: list[str]
    counts: list[list[int]]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {"labels": self.labels, "counts": self.counts}


def match_label(text: str, labels: Sequence[str]) -> str | None:
    """The label a generated answer names: an exact normalised match first, else the longest label it contains.

    Returns ``None`` when the text names no known label (counted as wrong, shown as ``(none)``).

    Examples
    --------
    >>> match_label("Intent: card_arrival.", ["card_arrival", "card_linking"])
    'card_arrival'
    """
    norm = normalise_answer(text)
    by_norm = {normalise_answer(label): label for label in labels}
    if norm in by_norm:
        return by_norm[norm]
    hits = [label for key, label in by_norm.items() if key and key in norm]
    return max(hits, key=len) if hits else None


def accuracy(predicted: Sequence[str | None], true: Sequence[str]) -> float:
    """Fraction of examples whose predicted label equals the true label."""
    if not true:
        return float("nan")
    return sum(p == t for p, t in zip(predicted, true, strict=True)) / len(true)


def macro_f1(predicted: Sequence[str | None], true: Sequence[str]) -> float:
    """Unweighted mean of per-label F1 over the labels that occur in ``true`` or ``predicted``.

    A prediction of ``None`` (no label recognised) counts against recall of the true label only.
    """
    labels = sorted({*true, *(p for p in predicted if p is not None)})
    if not labels:
        return float("nan")
    scores = []
    for label in labels:
        tp = sum(p == label and t == label for p, t in zip(predicted, true, strict=True))
        fp = sum(p == label and t != label for p, t in zip(predicted, true, strict=True))
        fn = sum(p != label and t == label for p, t in zip(predicted, true, strict=True))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores)


def confusion_matrix(predicted: Sequence[str | None], true: Sequence[str]) -> ConfusionMatrix:
    """Counts per (true, predicted) label; unrecognised predictions go to a ``(none)`` column."""
    labels = sorted({*true, *(p for p in predicted if p is not None)})
    if any(p is None for p in predicted):
        labels.append("(none)")
    index = {label: i for i, label in enumerate(labels)}
    counts = [[0] * len(labels) for _ in labels]
    for p, t in zip(predicted, true, strict=True):
        counts[index[t]][index["(none)" if p is None else p]] += 1
    return ConfusionMatrix(labels=labels, counts=counts)
