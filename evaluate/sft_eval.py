"""sft rows: token loss on the reference answers, metrics on generated answers, label accuracy and win rate."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._tokenize import prompt_and_answer
from .classifier_eval import label_metrics, predict_labels
from .config import GENERATION_METRICS
from .context import EvalContext, IndexStat, mean_stat, show_prompt
from .prompt_eval import win_rate

__all__ = ["eval_sft"]

_WORST_BY = ("token_f1", "rouge_l", "chrf", "exact_match", "label_correct", "loss")


def _loss(ctx: EvalContext, examples: list[dict[str, Any]]) -> None:
    """``loss`` and ``perplexity`` on the assistant tokens (mean over tokens), for the model and a causal baseline."""
    from .perplexity import TokenLoss, assistant_token_loss

    if not ctx.causal:
        ctx.note(f"`loss` needs a causal LM; {ctx.model.ref.name} is a {ctx.model.ref.role}, so it was skipped.")
        return
    cfg = ctx.config
    convs = [r["messages"] for r in ctx.rows]
    lm = assistant_token_loss(*ctx.model.pair, convs, batch_size=cfg.batch_size, max_length=cfg.max_length)
    lb = assistant_token_loss(*ctx.base.pair, convs, batch_size=cfg.batch_size, max_length=cfg.max_length) if ctx.base_causal else None  # type: ignore[union-attr]

    def loss_stat(tl: TokenLoss, *, ppl: bool) -> IndexStat:
        nll, tok = np.asarray(tl.nll), np.asarray(tl.tokens, dtype=float)

        def stat(i: np.ndarray) -> float:
            value = float(nll[i].sum() / max(tok[i].sum(), 1.0))
            return math.exp(value) if ppl else value

        return stat

    for name, ppl in (("loss", False), ("perplexity", True)):
        ctx.add(name, loss_stat(lm, ppl=ppl), loss_stat(lb, ppl=ppl) if lb else None)
    for ex, v in zip(examples, lm.per_example_loss(), strict=True):
        ex["loss"] = v
    if lb is not None:
        for ex, v in zip(examples, lb.per_example_loss(), strict=True):
            ex["baseline_loss"] = v


def _answers(ctx: EvalContext, prompts: list[Any], examples: list[dict[str, Any]]) -> tuple[list[str] | None, list[str] | None]:
    """Generated answers of the model and of a causal baseline (``None`` where there are none)."""
    from .generation import generate_answers

    if not ctx.causal:
        ctx.note(f"Generation metrics need a causal LM; {ctx.model.ref.name} is a {ctx.model.ref.role}.")
        return None, None
    answers = generate_answers(*ctx.model.pair, prompts, config=ctx.config.generation)
    base_answers = generate_answers(*ctx.base.pair, prompts, config=ctx.config.generation) if ctx.base_causal else None  # type: ignore[union-attr]
    for i, ex in enumerate(examples):
        ex["prediction"] = answers[i]
        if base_answers is not None:
            ex["baseline_prediction"] = base_answers[i]
    return answers, base_answers


def _text_metrics(ctx: EvalContext, names: list[str], answers: list[str], base_answers: list[str] | None,
                  references: list[str], examples: list[dict[str, Any]]) -> None:  # fmt: skip
    """Exact match, token F1, ROUGE-L, BLEU, chrF... of the answers against the references (corpus BLEU in details)."""
    from .metrics import corpus_bleu, score_texts

    scores = score_texts(answers, references, metrics=names)
    base_scores = score_texts(base_answers, references, metrics=names) if base_answers is not None else None
    for name in names:
        ctx.add(name, mean_stat(scores[name]), mean_stat(base_scores[name]) if base_scores else None)
        for ex, v in zip(examples, scores[name], strict=True):
            ex[name] = v
    if "bleu" in names:
        ctx.result.details["corpus_bleu"] = corpus_bleu(answers, references)


def _labels(ctx: EvalContext, answers: list[str] | None, base_answers: list[str] | None, examples: list[dict[str, Any]]) -> None:
    """``label_accuracy`` / ``label_macro_f1`` over the labels of every split of the version."""
    rows, base, size = ctx.rows, ctx.base, ctx.config.batch_size
    dataset = ctx.result.dataset
    labels = [v for v in ctx.store.kept(dataset).get_column("label").unique().to_list() if v]  # every split's labels
    true = [r["label"] for r in rows]
    label_set = sorted(set(true) | set(labels))
    predicted = predict_labels(ctx.model, answers, rows, label_set, size)
    base_predicted = (
        predict_labels(base, base_answers, rows, label_set, size)
        if base is not None and (base.ref.role == "classifier" or base_answers is not None)
        else None
    )
    if predicted is None:
        return
    label_metrics(ctx, true, predicted, base_predicted)
    for ex, p in zip(examples, predicted, strict=True):
        ex["predicted_label"] = p if p is not None else "(none)"
        ex["label_correct"] = float(p == ex.get("label"))


def eval_sft(ctx: EvalContext) -> None:
    """Evaluate sft rows with the configured metrics; the ones that do not apply are noted as skipped."""
    wanted, dataset = ctx.config.metrics, ctx.result.dataset
    split_rows = [prompt_and_answer(r["messages"], system_prompt=ctx.config.system_prompt) for r in ctx.rows]
    prompts = [p for p, _ in split_rows]
    references = [a for _, a in split_rows]
    examples: list[dict[str, Any]] = []
    for r, p, ref in zip(ctx.rows, prompts, references, strict=True):
        examples.append({"id": r["id"], "prompt": show_prompt(p), "reference": ref} | ({"label": r["label"]} if r.get("label") else {}))
    for name in ("preference_accuracy", "dpo_margin"):
        if name in wanted:
            ctx.note(f"`{name}` needs preference data; {dataset} holds sft rows, so it was skipped.")
    if "loss" in wanted:
        _loss(ctx, examples)

    text_metrics = [m for m in wanted if m in GENERATION_METRICS]
    label_wanted = "label_accuracy" in wanted
    if label_wanted and not all(r.get("label") for r in ctx.rows):
        ctx.note(f"`label_accuracy` needs a `label` on every row of {dataset}; it was skipped.")
        label_wanted = False
    answers = base_answers = None
    if text_metrics or "win_rate" in wanted or (label_wanted and ctx.causal):
        answers, base_answers = _answers(ctx, prompts, examples)
    if answers is not None and text_metrics:
        _text_metrics(ctx, text_metrics, answers, base_answers, references, examples)
    if label_wanted:
        _labels(ctx, answers, base_answers, examples)
    if "win_rate" in wanted and answers is not None and base_answers is not None:
        win_rate(ctx, prompts, answers, base_answers)  # before `examples` is set: sft examples carry no `win` (as before)
    elif "win_rate" in wanted:
        ctx.note("`win_rate` needs answers from both the model and a causal-LM baseline; it was skipped.")

    ctx.result.examples = examples
    ctx.result.worst_by = next((m for m in _WORST_BY if m in examples[0]), None)
