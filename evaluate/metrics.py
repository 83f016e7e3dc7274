"""Text metrics for generated answers: pure functions of a prediction and a reference.

Each ``*_score`` function scores one example (a float in [0, 1] unless said otherwise), so
that per-example scores can be bootstrapped, ranked for the worst-examples table and
averaged. ROUGE-L comes from ``rouge-score`` and BLEU / chrF from ``sacrebleu`` (both
offline; never ``evaluate``'s hub-downloaded metric scripts).
"""

from __future__ import annotations

import json
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

__all__ = [
    "TEXT_METRICS",
    "bleu_score",
    "chrf_score",
    "corpus_bleu",
    "exact_match_score",
    "json_valid_score",
    "length_ratio",
    "normalise_answer",
    "rouge_l_score",
    "score_texts",
    "token_f1_score",
]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)
_WS = re.compile(r"\s+")


def normalise_answer(text: str) -> str:
    """SQuAD-style normalisation: NFKC, lower case, no punctuation, no articles, single spaces.

    Examples
    --------
    >>> normalise_answer("  The Answer, is: 42! ")
    'answer is 42'
    """
    text = unicodedata.normalize("NFKC", text).lower().translate(_PUNCT)
    return _WS.sub(" ", _ARTICLES.sub(" ", text)).strip()


def exact_match_score(prediction: str, reference: str) -> float:
    """1.0 when prediction and reference are equal after :func:`normalise_answer`, else 0.0."""
    return float(normalise_answer(prediction) == normalise_answer(reference))


def token_f1_score(prediction: str, reference: str) -> float:
    """Harmonic mean of token precision and recall over normalised whitespace tokens (SQuAD F1).

    Two empty strings score 1.0; one empty string scores 0.0.
    """
    pred, ref = normalise_answer(prediction).split(), normalise_answer(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


@cache
def _rouge_scorer() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def rouge_l_score(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure (longest common subsequence of tokens), from ``rouge-score``."""
    return float(_rouge_scorer().score(reference, prediction)["rougeL"].fmeasure)


def bleu_score(prediction: str, reference: str) -> float:
    """Sentence BLEU from ``sacrebleu`` (exponential smoothing), scaled to [0, 1]."""
    import sacrebleu

    return min(1.0, sacrebleu.sentence_bleu(prediction, [reference]).score / 100.0)


def chrf_score(prediction: str, reference: str) -> float:
    """Sentence chrF (character n-gram F-score) from ``sacrebleu``, scaled to [0, 1]."""
    import sacrebleu

    return min(1.0, sacrebleu.sentence_chrf(prediction, [reference]).score / 100.0)


def corpus_bleu(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU from ``sacrebleu`` over all examples at once, scaled to [0, 1].

    Corpus BLEU is not the mean of sentence BLEU; report it beside the per-example mean.
    """
    import sacrebleu

    return min(1.0, sacrebleu.corpus_bleu(list(predictions), [list(references)]).score / 100.0)


def length_ratio(prediction: str, reference: str) -> float:
    """Whitespace tokens in the prediction divided by those in the reference (1.0 is equal length).

    Not bounded by 1; an empty reference gives 0.0 for an empty prediction and the
    prediction's token count otherwise.
    """
    pred, ref = len(prediction.split()), len(reference.split())
    return pred / ref if ref else float(pred)


_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def json_valid_score(prediction: str, reference: str | None = None) -> float:
    """1.0 when the prediction parses as a JSON object or array (a ```json fence is allowed), else 0.0.

    The reference is ignored; the signature matches the other metrics.
    """
    text = prediction.strip()
    if match := _FENCE.match(text):
        text = match.group(1)
    try:
        return float(isinstance(json.loads(text), dict | list))
    except ValueError:
        return 0.0


TEXT_METRICS: dict[str, Callable[[str, str], float]] = {
    "exact_match": exact_match_score,
    "token_f1": token_f1_score,
    "rouge_l": rouge_l_score,
    "bleu": bleu_score,
    "chrf": chrf_score,
    "length_ratio": length_ratio,
    "json_valid": json_valid_score,
}
"""Per-example text metrics by the name used in configs, on the command line and in reports."""


def score_texts(
    predictions: Sequence[str], references: Sequence[str], *, metrics: Sequence[str]
) -> dict[str, list[float]]:
    """Per-example scores of each named metric.

    Parameters
    ----------
    predictions, references
        Generated and expected answers, aligned.
    metrics
        Names from :data:`TEXT_METRICS`.

    Returns
    -------
    dict
        Metric name -> one score per example.
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references; they must be aligned.")
    unknown = [m for m in metrics if m not in TEXT_METRICS]
    if unknown:
        raise ValueError(f"Unknown text metric(s) {unknown}; choose from {sorted(TEXT_METRICS)}.")
    return {m: [TEXT_METRICS[m](p, r) for p, r in zip(predictions, references, strict=True)] for m in metrics}
