"""Forgetting check: a regression set of general prompts scored on the tuned model and on its base.

Two signals, each with a bootstrap interval:

- perplexity of reference answers (where the set has them: MT-Bench ships GPT-4 references
  for 30 of its 80 questions), tuned vs base, paired per question;
- a judged win rate of the tuned model's answers against the base's on every question
  (when a judge is given).

The check is flagged when the tuned perplexity exceeds the base's by more than ``tolerance``
(relative) or the win rate falls below ``0.5 - tolerance``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate.errors import ConfigError
from curate.formats.containers import read_rows

from .bootstrap import Interval, paired_bootstrap_diff
from .config import BootstrapConfig, GenerationConfig
from .generation import generate_answers
from .judges import Judge
from .perplexity import assistant_token_loss
from .winrate import WinRate, pairwise_win_rate

__all__ = ["DEFAULT_MT_BENCH", "ForgettingResult", "RegressionPrompt", "forgetting_check", "load_regression_set"]

DEFAULT_MT_BENCH = Path("../shared/data/fastchat/mt_bench/question.jsonl")
"""Where MT-Bench's questions are looked for when a config names no file (relative to the working directory)."""


@dataclass(frozen=True)
class RegressionPrompt:
    """One general prompt (first turn) and, when known, a reference answer."""

    id: str
    category: str | None
    prompt: str
    reference: str | None = None


def _reference_file(questions: Path) -> Path | None:
    candidates = sorted(questions.parent.glob("reference_answer*.jsonl"))
    return candidates[0] if candidates else None


def load_regression_set(path: str | Path | None = None, *, max_questions: int | None = None) -> list[RegressionPrompt]:
    """Read a regression set: MT-Bench's ``question.jsonl`` shape (``turns``) or rows with ``prompt`` / ``question``.

    An optional ``reference`` field gives a reference answer; for MT-Bench files the
    ``reference_answer*.jsonl`` beside the questions supplies references by ``question_id``.

    Parameters
    ----------
    path
        The JSONL file; ``None`` means :data:`DEFAULT_MT_BENCH`.
    max_questions
        Keep only the first N prompts; ``None`` keeps all.
    """
    path = Path(path) if path is not None else DEFAULT_MT_BENCH
    if not path.is_file():
        raise ConfigError(
            f"The forgetting check's question file {path} does not exist. Point `evaluate.forgetting.questions` "
            "at a JSONL of general prompts (MT-Bench's question.jsonl shape, or rows with `prompt`)."
        )
    refs: dict[Any, str] = {}
    ref_file = _reference_file(path)
    if ref_file is not None and ref_file != path:
        for _, row in read_rows(ref_file, shown=str(ref_file)):
            turns = (row.get("choices") or [{}])[0].get("turns") or []
            if turns:
                refs[row.get("question_id")] = turns[0]
    out = []
    for lineno, row in read_rows(path, shown=str(path)):
        text = (row.get("turns") or [None])[0] or row.get("prompt") or row.get("question") or row.get("instruction")
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"{path}, line {lineno}: no prompt text (expected `turns`, `prompt` or `question`).")
        qid = row.get("question_id", row.get("id", lineno))
        reference = row.get("reference")
        if isinstance(reference, list):  # MT-Bench: one reference per turn
            reference = reference[0] if reference else None
        out.append(
            RegressionPrompt(id=str(qid), category=row.get("category"), prompt=text, reference=reference or refs.get(qid))
        )
    return out[:max_questions] if max_questions else out


@dataclass
class ForgettingResult:
    """Tuned vs base on the regression set."""

    n_prompts: int
    n_references: int
    tolerance: float
    perplexity_tuned: float | None = None
    perplexity_base: float | None = None
    loss_diff: Interval | None = None  # tuned - base, per reference, nats per token
    win_rate: WinRate | None = None
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def perplexity_ratio(self) -> float | None:
        """Tuned perplexity over base perplexity (1.0 is unchanged)."""
        if self.perplexity_tuned is None or self.perplexity_base is None:
            return None
        return self.perplexity_tuned / self.perplexity_base

    @property
    def regressed(self) -> bool:
        """Perplexity up by more than ``tolerance``, or win rate below ``0.5 - tolerance``."""
        ratio = self.perplexity_ratio
        by_ppl = ratio is not None and ratio > 1.0 + self.tolerance
        by_judge = self.win_rate is not None and self.win_rate.rate < 0.5 - self.tolerance
        return by_ppl or by_judge

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "n_prompts": self.n_prompts,
            "n_references": self.n_references,
            "tolerance": self.tolerance,
            "perplexity_tuned": self.perplexity_tuned,
            "perplexity_base": self.perplexity_base,
            "perplexity_ratio": self.perplexity_ratio,
            "loss_diff": self.loss_diff.to_dict() if self.loss_diff else None,
            "win_rate": self.win_rate.to_dict() if self.win_rate else None,
            "regressed": self.regressed,
        }


def forgetting_check(
    tuned: tuple[Any, Any],
    base: tuple[Any, Any],
    prompts: Sequence[RegressionPrompt],
    *,
    tolerance: float = 0.05,
    judge: Judge | None = None,
    generation: GenerationConfig | None = None,
    bootstrap: BootstrapConfig | None = None,
    batch_size: int = 8,
    max_length: int | None = 1024,
) -> ForgettingResult:
    """Score the regression set on the tuned model and its base.

    Parameters
    ----------
    tuned, base
        ``(model, tokenizer)`` pairs.
    prompts
        From :func:`load_regression_set`.
    tolerance
        Relative perplexity increase (and win-rate drop below 0.5) that counts as a regression.
    judge
        Pairwise judge for the win rate of tuned vs base answers; ``None`` skips generation and judging.
    generation, bootstrap
        Decoding and interval settings; ``None`` uses the defaults.
    """
    boot = bootstrap or BootstrapConfig()
    result = ForgettingResult(
        n_prompts=len(prompts), n_references=sum(p.reference is not None for p in prompts), tolerance=tolerance
    )
    with_ref = [p for p in prompts if p.reference]
    if with_ref:
        convs = [[{"role": "user", "content": p.prompt}, {"role": "assistant", "content": p.reference}] for p in with_ref]
        lt = assistant_token_loss(*tuned, convs, batch_size=batch_size, max_length=max_length)
        lb = assistant_token_loss(*base, convs, batch_size=batch_size, max_length=max_length)
        result.perplexity_tuned, result.perplexity_base = lt.perplexity, lb.perplexity
        result.loss_diff = paired_bootstrap_diff(
            lt.per_example_loss(), lb.per_example_loss(), resamples=boot.resamples, confidence=boot.confidence, seed=boot.seed
        )
        for p, a, b in zip(with_ref, lt.per_example_loss(), lb.per_example_loss(), strict=True):
            result.examples.append({"id": p.id, "prompt": p.prompt, "loss_tuned": a, "loss_base": b, "delta": a - b})
    if judge is not None:
        questions = [[{"role": "user", "content": p.prompt}] for p in prompts]
        answers_t = generate_answers(*tuned, questions, config=generation)
        answers_b = generate_answers(*base, questions, config=generation)
        result.win_rate = pairwise_win_rate(
            questions, answers_t, answers_b, judge, resamples=boot.resamples, confidence=boot.confidence, seed=boot.seed
        )
    result.examples.sort(key=lambda e: -e["delta"] if not math.isnan(e["delta"]) else 0.0)
    return result
