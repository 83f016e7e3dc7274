"""Answers to held-out prompts, one per prompt, through the generation layer (:mod:`curate.generate`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from curate.generate import Sampling
from curate.generate.transformers_backend import TransformersGenerator

__all__ = ["generate_answers"]


def generate_answers(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Sequence[Any]],
    *,
    config: Sampling | None = None,
) -> list[str]:
    """Generate one answer per prompt with :class:`~curate.generate.transformers_backend.TransformersGenerator`.

    Batching, left padding, length sorting (batching never changes a greedy answer) and seeding
    all live in that backend; this is its one-answer-per-prompt form for the evaluators.

    Parameters
    ----------
    model
        A causal LM or PEFT wrapper.
    tokenizer
        Its tokenizer, with a chat template; its padding side is restored afterwards.
    prompts
        Message lists ending before the assistant turn to generate.
    config
        Length, batch size and decoding; ``None`` means greedy with the defaults of :class:`Sampling`.

    Returns
    -------
    list of str
        The decoded answers without special tokens, aligned with ``prompts``.
    """
    name = str(getattr(getattr(model, "config", None), "name_or_path", "") or "model")
    generator = TransformersGenerator(model, tokenizer, name=name, sampling=config)
    return [answers[0] for answers in generator.generate(prompts)]
