"""The forgetting check of an evaluation: a tuned causal LM against its base on general prompts (MT-Bench style)."""

from __future__ import annotations

from pathlib import Path

from .context import EvalContext
from .models import LoadedModel, ModelRef, load_model

__all__ = ["as_model_path", "eval_forgetting"]


def as_model_path(model: str) -> Path | str:
    """A local folder as a path; anything else (a hub id) as given."""
    return Path(model) if Path(model).exists() else model


def _reference(ctx: EvalContext) -> LoadedModel | None:
    """The base model: the loaded baseline when it is the run's base, else loaded here; None (with a note) when unknown."""
    base, baseline = ctx.base, ctx.result.baseline
    if base is not None and base.ref.role == "causal_lm" and baseline and baseline.startswith("base"):
        return base
    if ctx.model.ref.base_model is None:
        ctx.note("The forgetting check compares with the base model, which is unknown here; skipped.")
        return None
    ref = ModelRef(name="base", path=as_model_path(ctx.model.ref.base_model), role="causal_lm")
    return load_model(ref, device=ctx.device)


def eval_forgetting(ctx: EvalContext) -> None:
    """Run the ``forgetting:`` block's check and put it under ``details["forgetting"]`` (a note when it regressed)."""
    from .forgetting import forgetting_check, load_regression_set

    fc, cfg = ctx.config.forgetting, ctx.config
    assert fc is not None  # only called with a `forgetting:` block
    if not ctx.causal:
        ctx.note("The forgetting check needs a causal LM; skipped.")
        return
    reference = _reference(ctx)
    if reference is None:
        return
    prompts = load_regression_set(fc.questions, max_questions=fc.max_questions)
    judge = ctx.judge() if cfg.judge is not None else None
    fr = forgetting_check(
        ctx.model.pair, reference.pair, prompts, tolerance=fc.tolerance, judge=judge, generation=cfg.generation,
        bootstrap=cfg.bootstrap, batch_size=cfg.batch_size, max_length=cfg.max_length,
    )  # fmt: skip
    ctx.result.details["forgetting"] = fr.to_dict()
    ctx.result.details["forgetting_examples"] = fr.examples[:20]
    if fr.regressed:
        ctx.note(f"Forgetting: the tuned model regressed on the general prompts beyond the tolerance {fc.tolerance}.")
