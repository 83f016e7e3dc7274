"""Pairwise win rate of system X against system Y on the same prompts, position-swapped, ties counted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .bootstrap import Interval, bootstrap_ci
from .judges import Judge, Verdict

__all__ = ["WinRate", "pairwise_win_rate"]


@dataclass(frozen=True)
class WinRate:
    """Wins, ties and losses of X against Y; the rate counts a tie as half a win."""

    wins: int
    ties: int
    losses: int
    scores: list[float] = field(repr=False)
    interval: Interval
    inconsistent: int = 0

    @property
    def rate(self) -> float:
        """``(wins + ties / 2) / n``."""
        return self.interval.value

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "win_rate": self.interval.to_dict(),
            "wins": self.wins,
            "ties": self.ties,
            "losses": self.losses,
            "inconsistent_after_swap": self.inconsistent,
        }


def _score(first: Verdict, swapped: Verdict | None) -> tuple[float, bool]:
    """X's score from the verdict with X as A and, if swapped, with X as B."""
    a = {"A": 1.0, "B": 0.0, "tie": 0.5}[first]
    if swapped is None:
        return a, False
    b = {"A": 0.0, "B": 1.0, "tie": 0.5}[swapped]
    if a == b:
        return a, False
    if 0.5 in (a, b):  # one order says tie: half a point of lean is still a tie-ish result
        return (a + b) / 2, False
    return 0.5, True  # the verdict followed the position, not the answer: a tie (MT-Bench's rule)


def pairwise_win_rate(
    questions: Sequence[Sequence[Any]],
    answers_x: Sequence[str],
    answers_y: Sequence[str],
    judge: Judge,
    *,
    swap: bool = True,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> WinRate:
    """Win rate of X over Y as decided by ``judge``.

    Parameters
    ----------
    questions
        Prompt message lists, one per pair.
    answers_x, answers_y
        The two systems' answers, aligned with ``questions``.
    judge
        A :class:`~.judges.RewardModelJudge`, :class:`~.judges.LLMJudge` or anything with ``compare``.
    swap
        Judge each pair twice, X first then Y first. A verdict that flips with the order is a
        tie (counted in ``inconsistent``); a win in one order and a tie in the other is 0.75.
    resamples, confidence, seed
        Bootstrap interval of the rate over questions.
    """
    first = judge.compare(questions, answers_x, answers_y)
    second = judge.compare(questions, answers_y, answers_x) if swap else [None] * len(first)
    scores, inconsistent = [], 0
    for v1, v2 in zip(first, second, strict=True):
        s, flipped = _score(v1, v2)
        scores.append(s)
        inconsistent += flipped
    wins = sum(s > 0.5 for s in scores)
    losses = sum(s < 0.5 for s in scores)
    return WinRate(
        wins=wins,
        ties=len(scores) - wins - losses,
        losses=losses,
        scores=scores,
        interval=bootstrap_ci(scores, resamples=resamples, confidence=confidence, seed=seed),
        inconsistent=inconsistent,
    )
