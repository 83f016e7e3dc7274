"""Prompt-only rows (no reference answers): the model's and the baseline's answers judged pairwise (``win_rate``)."""

from __future__ import annotations

from typing import Any

from ._tokenize import plain_messages
from .context import EvalContext, show_prompt
from .results import MetricResult

__all__ = ["eval_prompts", "win_rate"]


def win_rate(ctx: EvalContext, prompts: list[Any], answers: list[str], base_answers: list[str]) -> None:
    """Add ``win_rate``: the judge's pairwise verdicts on the model's vs the baseline's answers (per-row ``win``)."""
    from .winrate import pairwise_win_rate

    judge = ctx.judge()
    wr = pairwise_win_rate(prompts, answers, base_answers, judge, swap=ctx.config.judge.swap, **ctx.bootstrap)  # type: ignore[union-attr]
    ctx.result.metrics.append(MetricResult.of("win_rate", wr.interval))
    ctx.result.details["win_rate"] = wr.to_dict()
    if getattr(judge, "unparsed", 0):
        ctx.note(f"The LLM judge gave no [[A]]/[[B]]/[[C]] verdict {judge.unparsed} times; those count as ties.")
    for ex, s in zip(ctx.result.examples, wr.scores, strict=False):
        ex["win"] = s


def eval_prompts(ctx: EvalContext) -> None:
    """Evaluate prompt rows: only ``win_rate`` applies, and only against a causal-LM baseline."""
    from .generation import generate_answers

    result = ctx.result
    prompts = [plain_messages(r["prompt"]) for r in ctx.rows]
    skipped = [m for m in ctx.config.metrics if m != "win_rate"]
    if skipped:
        ctx.note(f"{', '.join(skipped)}: {result.kind} rows have no reference answers; only win_rate applies.")
    result.examples = [{"id": r["id"], "prompt": show_prompt(p)} for r, p in zip(ctx.rows, prompts, strict=True)]
    if "win_rate" in ctx.config.metrics and ctx.causal and ctx.base_causal:
        answers = generate_answers(*ctx.model.pair, prompts, config=ctx.config.generation)
        base_answers = generate_answers(*ctx.base.pair, prompts, config=ctx.config.generation)  # type: ignore[union-attr]
        for ex, a, b in zip(result.examples, answers, base_answers, strict=True):
            ex.update(prediction=a, baseline_prediction=b)
        win_rate(ctx, prompts, answers, base_answers)
        result.worst_by = "win"
