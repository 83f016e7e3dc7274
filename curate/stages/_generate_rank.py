"""Candidates of the ``generate`` stage: producing them per generator, and scoring them with a judge."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from curate.errors import GenerationError
from curate.generate import Generator, GeneratorConfig, load_generator

__all__ = ["Candidate", "Outputs", "generate_candidates", "judge_scores"]

log = logging.getLogger(__name__)

LOOKS_DOWN = 3  # consecutive single-prompt failures after a failed batch: stop trying that generator


@dataclass
class Candidate:
    """One answer to a prompt and who wrote it (a generator's name, or ``reference``)."""

    generator: str
    text: str
    score: float | None = None


@dataclass
class Outputs:
    """One generator's answers: ``texts[i]`` for prompt ``i``, or ``errors[i]`` when it failed."""

    name: str
    texts: list[list[str] | None]
    errors: dict[int, str]


def generate_candidates(
    config: GeneratorConfig, prompts: Sequence[Any], *, n: int, env: Mapping[str, str]
) -> tuple[str, Outputs]:
    """``n`` answers per prompt from one generator; a failed batch is retried prompt by prompt.

    A generator that cannot be built, or that fails on :data:`LOOKS_DOWN` prompts in a row after
    its batch failed, fails every prompt not answered yet with its error.
    """
    if not prompts:  # nothing to answer: no model is loaded
        return config.model, Outputs(config.model, [], {})
    try:
        generator = load_generator(config, env=env)
    except GenerationError as exc:
        name = f"{config.backend}:{config.model}"
        return name, Outputs(name, [None] * len(prompts), dict.fromkeys(range(len(prompts)), str(exc)))
    try:
        return generator.name, _run(generator, prompts, n=n)
    finally:
        generator.close()


def _run(generator: Generator, prompts: Sequence[Any], *, n: int) -> Outputs:
    try:
        return Outputs(generator.name, list(generator.generate(prompts, n=n)), {})
    except GenerationError as exc:
        log.warning("%s failed on a batch of %d prompts (%s); retrying one at a time", generator.name, len(prompts), exc)
        batch_error = str(exc)
    texts: list[list[str] | None] = [None] * len(prompts)
    errors: dict[int, str] = {}
    in_a_row = 0
    for i, prompt in enumerate(prompts):
        if in_a_row >= LOOKS_DOWN:
            errors[i] = f"not tried: {generator.name} failed on {LOOKS_DOWN} prompts in a row ({batch_error})"
            continue
        try:
            texts[i] = generator.generate([prompt], n=n)[0]
            in_a_row = 0
        except GenerationError as exc:
            errors[i] = str(exc)
            in_a_row += 1
    return Outputs(generator.name, texts, errors)


def judge_scores(judge: Any, prompts: Sequence[Any], candidates: Sequence[list[Candidate]], *, swap: bool) -> None:
    """Set ``score`` on every candidate: its reward, or for an LLM judge its mean pairwise win score.

    An LLM judge compares every two candidates of a prompt (both orders when ``swap``; a verdict
    that flips with the order is a tie); a candidate's score is its mean over its comparisons,
    1 for a win, 0.5 for a tie and 0 for a loss.
    """
    if hasattr(judge, "scores"):  # RewardModelJudge
        flat = [(p, c) for p, row in zip(prompts, candidates, strict=True) for c in row]
        for (_, candidate), score in zip(flat, judge.scores([p for p, _ in flat], [c.text for _, c in flat]), strict=True):
            candidate.score = float(score)
        return
    from curate.evaluate.winrate import pairwise_win_rate

    pairs = [(p, row, i, j) for p, row in zip(prompts, candidates, strict=True) for i, j in combinations(range(len(row)), 2)]
    if not pairs:
        return
    won = pairwise_win_rate(
        [p for p, *_ in pairs],
        [row[i].text for _, row, i, _ in pairs],
        [row[j].text for _, row, _, j in pairs],
        judge,
        swap=swap,
        resamples=1,
    ).scores
    totals: dict[int, float] = {}
    for (_, row, i, j), score in zip(pairs, won, strict=True):
        totals[id(row[i])] = totals.get(id(row[i]), 0.0) + score
        totals[id(row[j])] = totals.get(id(row[j]), 0.0) + 1.0 - score
    for row in candidates:
        for candidate in row:
            candidate.score = totals.get(id(candidate), 0.0) / max(len(row) - 1, 1)
