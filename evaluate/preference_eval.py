"""Preference pairs: accuracy of a reward model (or of a DPO run's implicit reward) at ranking chosen over rejected."""

from __future__ import annotations

from typing import Any

from ._tokenize import plain_messages
from .context import EvalContext, mean_stat, show_prompt
from .models import LoadedModel, ModelRef

__all__ = ["eval_preference"]


def _recipe_beta(ref: ModelRef) -> float:
    """The run's DPO ``rl.beta`` from its resolved recipe; 0.1 (TRL's default) when unknown."""
    if ref.run_dir is not None and (ref.run_dir / "recipe.yaml").is_file():
        import yaml

        recipe = yaml.safe_load((ref.run_dir / "recipe.yaml").read_text(encoding="utf-8")) or {}
        beta = (recipe.get("rl") or {}).get("beta")
        if beta is not None:
            return float(beta)
    return 0.1


def _example(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "prompt": show_prompt(plain_messages(row["prompt"])),
        "chosen": "\n".join(m["content"] for m in plain_messages(row["chosen"])),
        "rejected": "\n".join(m["content"] for m in plain_messages(row["rejected"])),
    }


def _reward_scores(ctx: EvalContext, loaded: LoadedModel) -> tuple[list[float], list[float]]:
    """A reward model's scores of every (prompt + chosen) and (prompt + rejected) conversation."""
    from .preference import reward_scores

    chosen = [plain_messages(r["prompt"]) + plain_messages(r["chosen"]) for r in ctx.rows]
    rejected = [plain_messages(r["prompt"]) + plain_messages(r["rejected"]) for r in ctx.rows]
    size = ctx.config.batch_size
    return reward_scores(*loaded.pair, chosen, batch_size=size), reward_scores(*loaded.pair, rejected, batch_size=size)


def _dpo_margins(ctx: EvalContext) -> list[float] | None:
    """DPO implicit reward margins of a causal-LM run against its base; None (with a note) without that base."""
    from .preference import dpo_reward_margins

    cfg = ctx.config
    if not ctx.causal:
        return None
    if not ctx.base_causal:
        if "dpo_margin" in cfg.metrics or "preference_accuracy" in cfg.metrics:
            ctx.note("DPO implicit rewards need the reference model (the run's base); set `baseline: base`. Skipped.")
        return None
    beta = _recipe_beta(ctx.model.ref)
    margins = dpo_reward_margins(
        ctx.model.model, ctx.base.model, ctx.model.tokenizer, ctx.rows,  # type: ignore[union-attr]
        beta=beta, batch_size=cfg.batch_size, max_length=cfg.max_length,
    )  # fmt: skip
    ctx.result.details["dpo_beta"] = beta
    for ex, m in zip(ctx.result.examples, margins, strict=True):
        ex["margin"] = m
    return margins


def _preference_accuracy(ctx: EvalContext, margins: list[float] | None) -> None:
    from .preference import preference_correct

    model, base, examples = ctx.model, ctx.base, ctx.result.examples
    if model.ref.role == "reward":
        c, r = _reward_scores(ctx, model)
        correct = preference_correct(c, r)
        base_correct = None
        if base is not None and base.ref.role == "reward":
            base_correct = preference_correct(*_reward_scores(ctx, base))
        ctx.add("preference_accuracy", mean_stat(correct), mean_stat(base_correct) if base_correct else None)
        for ex, a, b, ok in zip(examples, c, r, correct, strict=True):
            ex.update(reward_chosen=a, reward_rejected=b, margin=a - b, correct=ok)
    elif margins is not None:
        correct = preference_correct(margins, [0.0] * len(margins))
        ctx.add("preference_accuracy", mean_stat(correct))
        ctx.note("preference_accuracy of a causal LM is the share of pairs with a positive DPO implicit reward margin.")
        for ex, ok in zip(examples, correct, strict=True):
            ex["correct"] = ok
    else:
        ctx.note(f"`preference_accuracy` needs a reward model or a DPO run; {model.ref.name} is neither.")


def eval_preference(ctx: EvalContext) -> None:
    """Evaluate preference rows: ``preference_accuracy`` and ``dpo_margin``; other metrics are noted as skipped."""
    cfg = ctx.config
    ctx.result.examples = [_example(r) for r in ctx.rows]
    skipped = [m for m in cfg.metrics if m not in ("preference_accuracy", "dpo_margin")]
    if skipped:
        ctx.note(f"{', '.join(skipped)}: not computed on preference data (use an sft version).")
    margins = _dpo_margins(ctx)
    if "preference_accuracy" in cfg.metrics:
        _preference_accuracy(ctx, margins)
    if "dpo_margin" in cfg.metrics and margins is not None:
        ctx.add("dpo_margin", mean_stat(margins))
    examples = ctx.result.examples
    ctx.result.worst_by = "margin" if examples and "margin" in examples[0] else None
