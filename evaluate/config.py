"""The ``evaluate:`` block of pipeline and recipe YAML, and the options of ``curate eval``.

Pydantic only (no torch), so that loading a pipeline file stays fast and every choice that
can be checked from the file alone fails when the file is loaded.

.. code-block:: yaml

    evaluate:
      split: test
      metrics: [loss, exact_match, token_f1, rouge_l, label_accuracy]
      baseline: base               # the run's base model; or a run id / model dir; null for none
      generation: {max_new_tokens: 64, batch_size: 8}
      judge: {kind: reward_model, model: runs/rm-0001}
      forgetting: {tolerance: 0.05}
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from curate.generate.config import Sampling

__all__ = [
    "ALL_METRICS",
    "BootstrapConfig",
    "EvaluateConfig",
    "ForgettingConfig",
    "GenerationConfig",
    "JudgeConfig",
]

GENERATION_METRICS = ("exact_match", "token_f1", "rouge_l", "bleu", "chrf", "length_ratio", "json_valid")
ALL_METRICS: tuple[str, ...] = (
    "loss",  # assistant-token loss and perplexity (sft)
    *GENERATION_METRICS,  # on greedy (or sampled) answers to the held-out prompts (sft)
    "label_accuracy",  # accuracy, macro-F1 and confusion matrix of the generated label (sft with `label`)
    "preference_accuracy",  # reward model: chosen scored above rejected (preference)
    "dpo_margin",  # DPO run: implicit reward margin against its reference model (preference)
    "win_rate",  # pairwise win rate against the baseline, by `judge` (sft / prompt)
)
"""Every metric name an ``evaluate:`` block or ``--metrics`` accepts."""


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid")


GenerationConfig = Sampling
"""How answers are generated for the held-out prompts: the generation layer's one decoding config."""


class JudgeConfig(_Block):
    """Who decides which of two answers is better for `win_rate` and the forgetting check."""

    kind: Literal["reward_model", "llm"] = Field(
        description="`reward_model`: the higher scalar score wins. `llm`: a chat model reads a pairwise "
        "prompt template and answers [[A]], [[B]] or [[C]] (tie)."
    )
    model: str = Field(description="A run id, run folder or model folder of the judge.")
    template: str | None = Field(
        None,
        description="`llm` only: a JSONL of judge prompts in FastChat's shape (name, system_prompt, "
        "prompt_template with {question}, {answer_a}, {answer_b}). `None` uses the built-in copy of the pair-v2 shape.",
    )
    template_name: str = Field("pair-v2", description="`llm` only: which line of `template` to use, by `name`.")
    swap: bool = Field(
        True, description="Judge each pair in both orders; a verdict that flips with the order counts as a tie."
    )
    tie_margin: float = Field(
        0.0, ge=0.0, description="`reward_model` only: score differences up to this are ties."
    )
    max_new_tokens: int = Field(256, ge=1, description="`llm` only: most tokens of the judge's answer.")

    @model_validator(mode="after")
    def _llm_only_fields(self) -> JudgeConfig:
        if self.kind == "reward_model" and self.template is not None:
            raise ValueError("`template` is for `kind: llm`; a reward model judge reads no prompt template")
        return self


class ForgettingConfig(_Block):
    """A regression set of general prompts scored on the tuned model and its base."""

    questions: str | None = Field(
        None,
        description="JSONL of general prompts (MT-Bench's `turns`, or `prompt`/`question`, with an optional "
        "`reference`). `None` means MT-Bench's 80 questions at "
        "`../shared/data/fastchat/mt_bench/question.jsonl` (references from the file beside it).",
    )
    tolerance: float = Field(
        0.05,
        ge=0.0,
        description="Flag a regression when the tuned model's perplexity on the references exceeds the base's by "
        "more than this fraction, or its judged win rate against the base falls below 0.5 minus this.",
    )
    max_questions: int | None = Field(None, ge=1, description="Use only the first N questions; `None` uses all.")


class BootstrapConfig(_Block):
    """Bootstrap confidence intervals reported with every headline metric."""

    resamples: int = Field(1000, ge=10, description="Resamples with replacement.")
    confidence: float = Field(0.95, gt=0.0, lt=1.0, description="Two-sided coverage of the interval.")
    seed: int = Field(0, description="Seed of the resampling.")


class EvaluateConfig(_Block):
    """Held-out evaluation of a run (or a model) on a dataset version's held-out split."""

    dataset: str | None = Field(
        None,
        description="Dataset reference `name@N` or `name`. `None` uses the exact version the run was trained on.",
    )
    split: Literal["test", "validation", "train"] = Field(
        "test", description="Split to score. Rows that were in the run's train split are always refused."
    )
    metrics: list[str] = Field(
        default_factory=lambda: ["loss", "exact_match", "token_f1", "rouge_l"],
        description="Metrics to compute, from: " + ", ".join(ALL_METRICS) + ". Ones that do not fit the "
        "dataset kind (e.g. `preference_accuracy` on sft data) are skipped with a note in the report.",
    )
    baseline: str | None = Field(
        "base",
        description="What the run is compared with: `base` (the run's base model), another run id / run folder / "
        "model folder, or `None` for no comparison.",
    )
    max_examples: int | None = Field(None, ge=1, description="Score only the first N rows; `None` scores all.")
    system_prompt: str | None = Field(
        None, description="A system message put before each prompt that has none; `None` adds nothing."
    )
    generation: GenerationConfig = Field(default_factory=GenerationConfig, description="Answer generation.")
    judge: JudgeConfig | None = Field(None, description="Pairwise judge; `None` skips `win_rate`.")
    forgetting: ForgettingConfig | None = Field(
        None, description="Regression set against catastrophic forgetting; `None` skips the check."
    )
    bootstrap: BootstrapConfig = Field(default_factory=BootstrapConfig, description="Confidence intervals.")
    worst_examples: int = Field(50, ge=0, description="Rows shown in the report's worst-examples table.")
    batch_size: int = Field(8, ge=1, description="Rows per forward pass for loss and scoring.")
    max_length: int | None = Field(
        1024, ge=1, description="Truncate tokenised rows to this length, as the trainer does; `None` keeps all."
    )

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, value: list[str]) -> list[str]:
        unknown = [m for m in value if m not in ALL_METRICS]
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; choose from {list(ALL_METRICS)}")
        if not value:
            raise ValueError("list at least one metric")
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _win_rate_needs_judge_and_baseline(self) -> EvaluateConfig:
        if "win_rate" in self.metrics and self.judge is None:
            raise ValueError("`win_rate` needs a `judge` (kind: reward_model or llm, model: ...)")
        if "win_rate" in self.metrics and self.baseline is None:
            raise ValueError("`win_rate` compares with the baseline; set `baseline` (e.g. `base`)")
        return self
