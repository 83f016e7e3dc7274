"""Label predictions and their metrics: a classifier (``head`` run, sequence classifier) or a generated answer matched to a label."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._tokenize import plain_messages
from .classification import confusion_matrix, macro_f1, match_label
from .context import EvalContext, IndexStat
from .models import LoadedModel

__all__ = ["label_metrics", "predict_labels"]


def _head_predict(loaded: LoadedModel, texts: list[str], *, batch_size: int) -> list[str]:
    """Labels predicted by a classifier: a ``head`` run (encoder + linear head) or a sequence-classification model."""
    import torch

    model, tok = loaded.pair
    if hasattr(model, "predict"):  # curate.train.head.HeadClassifier
        return list(model.predict(texts))
    id2label = {int(k): v for k, v in model.config.id2label.items()}
    out: list[str] = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            enc = tok(texts[start : start + batch_size], return_tensors="pt", padding=True, truncation=True)
            logits = model(**{k: v.to(model.device) for k, v in enc.items()}).logits
            out.extend(id2label[int(i)] for i in logits.argmax(-1).tolist())
    return out


def _user_text(messages: list[dict[str, Any]]) -> str:
    """The text a `head` run classifies: the turns before the first assistant turn (as curate.train builds it)."""
    turns = []
    for m in messages:
        if m["role"] == "assistant":
            break
        turns.append(m["content"])
    return "\n\n".join(t for t in turns if t)


def predict_labels(
    loaded: LoadedModel, answers: list[str] | None, rows: list[dict[str, Any]], label_set: list[str], batch_size: int
) -> list[str | None] | None:
    """A label per row: the classifier's prediction, or the label a generated answer names (None: none does).

    ``None`` when ``loaded`` is a causal LM and there are no answers to match.
    """
    if loaded.ref.role == "classifier":
        texts = [_user_text(plain_messages(r["messages"])) for r in rows]
        return list(_head_predict(loaded, texts, batch_size=batch_size))
    if answers is None:
        return None
    return [match_label(a, label_set) for a in answers]


def label_metrics(ctx: EvalContext, true: list[str], predicted: list[str | None], base_predicted: list[str | None] | None) -> None:
    """Add ``label_accuracy`` and ``label_macro_f1`` (with the baseline's, when given) and the confusion matrices."""
    t = np.asarray(true, dtype=object)

    def acc(pred: list[str | None]) -> IndexStat:
        correct = np.asarray([p == y for p, y in zip(pred, true, strict=True)], dtype=float)
        return lambda i: float(correct[i].mean())

    def f1(pred: list[str | None]) -> IndexStat:
        p = np.asarray(pred, dtype=object)
        return lambda i: macro_f1(list(p[i]), list(t[i]))

    ctx.add("label_accuracy", acc(predicted), acc(base_predicted) if base_predicted else None)
    ctx.add("label_macro_f1", f1(predicted), f1(base_predicted) if base_predicted else None)
    ctx.result.details["confusion_matrix"] = confusion_matrix(predicted, true).to_dict()
    if base_predicted is not None:
        ctx.result.details["baseline_confusion_matrix"] = confusion_matrix(base_predicted, true).to_dict()
