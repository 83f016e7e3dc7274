"""Pairwise judges: a reward model, or an LLM reading a FastChat-style pairwise prompt template.

A judge answers, for each question and two answers shown as A and B, ``"A"``, ``"B"`` or
``"tie"``. Position swapping and counting live in :mod:`.winrate`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from curate.errors import ConfigError
from curate.formats.containers import read_rows

from ._tokenize import plain_messages
from .config import GenerationConfig, JudgeConfig
from .generation import generate_answers
from .preference import reward_scores

__all__ = [
    "Judge",
    "JudgeTemplate",
    "LLMJudge",
    "RewardModelJudge",
    "Verdict",
    "load_judge",
    "load_judge_template",
    "parse_verdict",
]

Verdict = Literal["A", "B", "tie"]


class Judge(Protocol):
    """Anything that compares answer A with answer B for each question."""

    def compare(self, questions: Sequence[Sequence[Any]], answers_a: Sequence[str], answers_b: Sequence[str]) -> list[Verdict]:
        """One verdict per question."""
        ...


@dataclass(frozen=True)
class JudgeTemplate:
    """A pairwise judge prompt in FastChat's ``judge_prompts.jsonl`` shape."""

    name: str
    system_prompt: str
    prompt_template: str
    output_format: str = "[[A]]"

    def render(self, *, question: str, answer_a: str, answer_b: str) -> list[dict[str, str]]:
        """The judge's chat messages for one pair."""
        user = self.prompt_template.format(question=question, answer_a=answer_a, answer_b=answer_b)
        return [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": user}]


PAIR_V2 = JudgeTemplate(
    name="pair-v2",
    system_prompt=(
        "Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants "
        "to the user question displayed below. Choose the assistant that follows the user's instructions and answers "
        "the user's question better. Avoid any position biases; do not let the length of the responses or the names "
        'of the assistants influence you. After a short explanation, output your final verdict strictly as "[[A]]" '
        'if assistant A is better, "[[B]]" if assistant B is better, and "[[C]]" for a tie.'
    ),
    prompt_template=(
        "[User Question]\n{question}\n\n[The Start of Assistant A's Answer]\n{answer_a}\n"
        "[The End of Assistant A's Answer]\n\n[The Start of Assistant B's Answer]\n{answer_b}\n"
        "[The End of Assistant B's Answer]"
    ),
)
"""curate's own wording of the pairwise shape FastChat's ``pair-v2`` uses (same placeholders and verdict tags)."""


def load_judge_template(path: str | Path | None = None, *, name: str = "pair-v2") -> JudgeTemplate:
    """Read one pairwise template by ``name`` from a FastChat-style JSONL; ``None`` gives :data:`PAIR_V2`."""
    if path is None:
        return PAIR_V2
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Judge template file {path} does not exist; give a JSONL like FastChat's judge_prompts.jsonl.")
    names = []
    for lineno, row in read_rows(path, shown=str(path)):
        names.append(row.get("name"))
        if row.get("name") != name:
            continue
        if row.get("type", "pairwise") != "pairwise":
            raise ConfigError(f"{path}, line {lineno}: template {name!r} is {row.get('type')!r}, a pairwise one is needed.")
        missing = [k for k in ("{question}", "{answer_a}", "{answer_b}") if k not in row.get("prompt_template", "")]
        if missing:
            raise ConfigError(f"{path}, line {lineno}: prompt_template of {name!r} lacks {', '.join(missing)}.")
        return JudgeTemplate(
            name=name,
            system_prompt=row.get("system_prompt", ""),
            prompt_template=row["prompt_template"],
            output_format=row.get("output_format", "[[A]]"),
        )
    raise ConfigError(f"{path} has no judge template named {name!r}; it has {names}.")


_VERDICT = re.compile(r"\[\[(A|B|C)\]\]")


def parse_verdict(text: str) -> Verdict | None:
    """The last ``[[A]]`` / ``[[B]]`` / ``[[C]]`` in a judge's answer (``C`` is a tie); ``None`` when absent."""
    found = _VERDICT.findall(text)
    if not found:
        return None
    return {"A": "A", "B": "B", "C": "tie"}[found[-1]]  # type: ignore[return-value]


def _question_text(question: Sequence[Any]) -> str:
    msgs = plain_messages(question)
    users = [m["content"] for m in msgs if m["role"] == "user"]
    return users[-1] if users else "\n".join(m["content"] for m in msgs)


class RewardModelJudge:
    """The answer with the higher reward wins; differences up to ``tie_margin`` are ties."""

    def __init__(self, model: Any, tokenizer: Any, *, tie_margin: float = 0.0, batch_size: int = 8) -> None:
        self.model, self.tokenizer, self.tie_margin, self.batch_size = model, tokenizer, tie_margin, batch_size

    def scores(self, questions: Sequence[Sequence[Any]], answers: Sequence[str]) -> list[float]:
        """Reward of each answer to its question."""
        convs = [[*plain_messages(q), {"role": "assistant", "content": a}] for q, a in zip(questions, answers, strict=True)]
        return reward_scores(self.model, self.tokenizer, convs, batch_size=self.batch_size)

    def compare(self, questions: Sequence[Sequence[Any]], answers_a: Sequence[str], answers_b: Sequence[str]) -> list[Verdict]:
        """One verdict per question from the two rewards."""
        a, b = self.scores(questions, answers_a), self.scores(questions, answers_b)
        return ["tie" if abs(x - y) <= self.tie_margin else "A" if x > y else "B" for x, y in zip(a, b, strict=True)]


class LLMJudge:
    """A chat model that reads a pairwise template and answers ``[[A]]``, ``[[B]]`` or ``[[C]]``.

    An answer with no verdict tag counts as a tie and is counted in ``unparsed``.
    """

    def __init__(
        self, model: Any, tokenizer: Any, *, template: JudgeTemplate = PAIR_V2, generation: GenerationConfig | None = None
    ) -> None:
        self.model, self.tokenizer, self.template = model, tokenizer, template
        self.generation = generation or GenerationConfig(max_new_tokens=256)
        self.unparsed = 0
        self.raw: list[str] = []

    def compare(self, questions: Sequence[Sequence[Any]], answers_a: Sequence[str], answers_b: Sequence[str]) -> list[Verdict]:
        """Generate the judge's answer for each pair and parse its verdict."""
        prompts = [
            self.template.render(question=_question_text(q), answer_a=a, answer_b=b)
            for q, a, b in zip(questions, answers_a, answers_b, strict=True)
        ]
        outputs = generate_answers(self.model, self.tokenizer, prompts, config=self.generation)
        self.raw.extend(outputs)
        verdicts: list[Verdict] = []
        for text in outputs:
            verdict = parse_verdict(text)
            if verdict is None:
                self.unparsed += 1
                verdict = "tie"
            verdicts.append(verdict)
        return verdicts


def load_judge(
    config: JudgeConfig, *, runs_root: str | Path = "runs", device: str | None = None, batch_size: int = 8
) -> RewardModelJudge | LLMJudge:
    """Load the judge a ``judge:`` block names (``curate eval``'s win rate, the ``generate`` stage's ranking).

    Parameters
    ----------
    config
        Kind (``reward_model`` or ``llm``), model, template and margins.
    runs_root
        Where a run id in ``config.model`` is looked up.
    device
        ``cpu``, ``cuda``, ...; ``None`` picks CUDA when available.
    batch_size
        ``reward_model`` only: conversations per forward pass.
    """
    from .models import load_model, resolve_target

    role = "reward" if config.kind == "reward_model" else "causal_lm"
    loaded = load_model(resolve_target(config.model, runs_root=runs_root, role=role), device=device)
    if config.kind == "reward_model":
        return RewardModelJudge(*loaded.pair, tie_margin=config.tie_margin, batch_size=batch_size)
    template = load_judge_template(config.template, name=config.template_name)
    return LLMJudge(*loaded.pair, template=template, generation=GenerationConfig(max_new_tokens=config.max_new_tokens))
