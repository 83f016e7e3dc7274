"""A loop file: where production rows come from, what to label, how to retrain and when to promote.

.. code-block:: yaml

    name: support
    training: intents              # the store dataset the loop extends (its latest version)
    model: intent-head-20261202-...  # the run serving now; later iterations use the promoted run
    collect: {files: {path: data/feedback/*.jsonl, format: auto}}
    budget: 50
    recipe: {model: all-MiniLM-L6-v2, method: sft, adapter: head, training: {epochs: 30}}

A loop is *intent* when its recipe trains a ``head`` (annotators pick a label) and *generative*
otherwise (method ``sft``, ``dpo`` or ``kto``: annotators rank the production answer against new
candidates from the ``generate:`` block's generators).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from curate.config import SourceConfig
from curate.evaluate.config import JudgeConfig
from curate.generate import GeneratorConfig
from curate.loop.strategies import Uncertainty
from curate.stages.generate import GenerateConfig
from curate.train.recipe import Recipe
from curate.yamlfile import load_yaml_model

__all__ = [
    "GATE_METRICS",
    "LABELED_KINDS",
    "CollectConfig",
    "GateConfig",
    "LabelConfig",
    "LoopConfig",
    "LoopGenerateConfig",
    "SelectConfig",
    "load_loop",
]

# the record kind of the labeled rows (and so of the training dataset), per recipe method; `head` is the intent loop
LABELED_KINDS = {"head": "sft", "sft": "sft", "dpo": "preference", "kto": "preference"}
# headline metrics the gate can compare (higher is better), the default first
GATE_METRICS = {
    "head": ("label_accuracy",),
    "sft": ("token_f1", "rouge_l", "exact_match", "bleu", "chrf"),
    "dpo": ("preference_accuracy", "dpo_margin"),
    "kto": ("preference_accuracy", "dpo_margin"),
}


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CollectConfig(_Block):
    """Where new production rows come from: files, or the feedback dataset `curate serve` writes."""

    files: SourceConfig | None = Field(
        None, description="`feedback` rows in files (a `source:` block as in pipelines); rows collected before are skipped."
    )
    dataset: str | None = Field(
        None, description="A `feedback` dataset in the store (`curate serve --feedback-dataset`); its latest version is read."
    )

    @model_validator(mode="after")
    def _one(self) -> CollectConfig:
        if (self.files is None) == (self.dataset is None):
            raise ValueError("set exactly one of `files` (a source block) or `dataset` (a curate serve feedback dataset)")
        return self


class SelectConfig(_Block):
    """How rows worth labeling are chosen within the budget (explicit failures always come first)."""

    uncertainty: Uncertainty = Field(
        "margin", description="Intent loops: uncertainty of the `head` run's class probabilities: least_confidence, "
        "margin or entropy. Generative loops score the production answer instead (see `reward_model`).",
    )
    reward_model: str | None = Field(
        None, description="Generative loops: a `reward` run (id or folder) whose score of each production answer r "
        "gives the uncertainty 1 - sigmoid(r). `None`: the current run's mean token log-probability of its own "
        "answer, lp, gives 1 - exp(lp). Both lie in [0, 1].",
    )
    min_uncertainty: float = Field(
        0.5, ge=0.0, description="A row that is not a failure is `confident` when its uncertainty is below this and "
        "its novelty below `min_novelty`. Entropy is in nats (up to ln(classes)); a causal LM's uncertainty is in "
        "[0, 1] (0.5: mean token probability 0.5, or reward 0).",
    )
    min_novelty: float = Field(
        0.3, ge=0.0, le=2.0, description="Novelty (1 - max cosine to the training rows) from which a row is worth labeling."
    )
    duplicate_threshold: float = Field(
        0.95, gt=0.0, le=1.0, description="Cosine from which a row duplicates a training row or another candidate."
    )
    seed: int = Field(0, description="Seed of the k-means that spreads picks across clusters.")


class LoopGenerateConfig(_Block):
    """Generative loops: who answers each selected prompt again beside the production answer (the `generate` stage's fields)."""

    generators: list[GeneratorConfig] = Field(
        [], description="Generators whose answers stand beside the production answer (the `reference` candidate). "
        "Empty: the current run (the last promoted run, else `model`), greedy.",
    )
    n: int = GenerateConfig.model_fields["n"]
    judge: JudgeConfig | None = GenerateConfig.model_fields["judge"]
    seed: int = GenerateConfig.model_fields["seed"]


class LabelConfig(_Block):
    """Argilla: intent loops ask for a label (the model's top-k as suggestions); generative loops rank two answers."""

    url: str | None = Field(
        None, description="Argilla URL; `None`: ARGILLA_API_URL or the local default. The key (ARGILLA_API_KEY) is only "
        "sent to the URL configured in the environment.",
    )
    dataset: str | None = Field(None, description="Argilla dataset name prefix; each iteration pushes to `<prefix>-<iteration>`. "
                                "`None`: the loop's name.")
    workspace: str = Field("argilla", description="Argilla workspace.")
    k: int = Field(3, ge=1, description="Intent loops: label suggestions shown per record.")
    min_submitted: int = Field(1, ge=1, description="Answers wanted per record.")
    labels: list[str] | None = Field(
        None, description="Intent loops: label set annotators choose from; `None`: the labels of the training version."
    )
    question: Literal["ranking", "label"] = Field(
        "ranking", description="Generative loops: annotators rank the two answers (`ranking`) or pick A / B / tie / "
        "both bad (`label`).",
    )


class GateConfig(_Block):
    """When the new run replaces the current one."""

    metric: str | None = Field(
        None, description="Headline metric compared (higher is better). `None`: `label_accuracy` for a head loop, "
        "`preference_accuracy` for dpo / kto, `token_f1` for sft.",
    )
    failures_holdout: float = Field(
        0.3, gt=0.0, lt=1.0, description="Share of the labeled failures held out to evaluate both runs on (not trained on)."
    )
    seed: int = Field(0, description="Seed of the held-out slice.")


class LoopConfig(BaseModel):
    """A loop file."""

    model_config = ConfigDict(extra="forbid", title="loop")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="Loop name: state lives in `loops/<name>/`.")
    training: str = Field(description="Store dataset of the training data; each iteration commits its next version.")
    model: str | None = Field(
        None, description="The run in production before the first promotion (run id or folder); later iterations "
        "compare against the last promoted run. `None`: no current run (the first new run is promoted).",
    )
    recipe: Recipe = Field(
        description="How each iteration's run is trained: a `head` recipe (intent loop, e.g. train-intent-head.yaml's) "
        "or method sft / dpo / kto with any other adapter (generative loop)."
    )
    generate: LoopGenerateConfig | None = Field(
        None, validate_default=True, description="Generative loops (required there): the candidates beside the "
        "production answer. `None`: an intent loop.",
    )
    collect: CollectConfig = Field(description="Where production rows come from.")
    feedback_dataset: str | None = Field(
        None, description="Store dataset that keeps each iteration's collected rows; `None`: `<name>-feedback`."
    )
    budget: int = Field(ge=1, description="Rows sent to annotators per iteration.")
    select: SelectConfig = Field(default_factory=SelectConfig, description="How rows are chosen.")
    label: LabelConfig = Field(default_factory=LabelConfig, description="Where annotators answer.")
    gate: GateConfig = Field(default_factory=GateConfig, description="When the new run is promoted.")

    @field_validator("recipe")
    @classmethod
    def _loop_method(cls, recipe: Recipe) -> Recipe:
        if recipe.adapter != "head" and recipe.method not in LABELED_KINDS:
            raise ValueError(
                f"the loop trains a `head` (intent) or method sft, dpo or kto (generative); method {recipe.method!r} "
                "does not learn from labeled production failures"
            )
        return recipe

    @field_validator("generate")
    @classmethod
    def _generate_for_generative(cls, block: LoopGenerateConfig | None, info: ValidationInfo) -> LoopGenerateConfig | None:
        recipe = info.data.get("recipe")
        if recipe is None:  # the recipe itself is invalid; its error says why
            return block
        if recipe.adapter == "head" and block is not None:
            raise ValueError("`generate:` is for generative loops; this recipe trains a `head` (an intent loop): remove it")
        if recipe.adapter != "head" and block is None:
            raise ValueError(
                f"a generative loop (method {recipe.method}, adapter {recipe.adapter}) needs a `generate:` block: who "
                "answers the selected prompts beside the production answer (`generate: {}` uses the current run)"
            )
        if block is not None and not block.generators and info.data.get("model") is None:
            raise ValueError(
                "`generate.generators` is empty, so the current run answers, but the loop names no `model` (the run "
                "in production); set `model` or list generators"
            )
        return block

    @field_validator("select", "label")
    @classmethod
    def _fields_of_the_path(cls, block: SelectConfig | LabelConfig, info: ValidationInfo) -> SelectConfig | LabelConfig:
        recipe = info.data.get("recipe")
        if recipe is None:
            return block
        generative = recipe.adapter != "head"
        refused = _INTENT_ONLY if generative else _GENERATIVE_ONLY
        wrong = sorted(block.model_fields_set & refused.get(info.field_name, set()))
        if wrong:
            path = "an intent loop (adapter `head`)" if not generative else f"a generative loop (method {recipe.method})"
            raise ValueError(f"{', '.join(f'`{w}`' for w in wrong)} does not apply to {path}: remove it")
        return block

    @field_validator("gate")
    @classmethod
    def _gate_metric_fits(cls, gate: GateConfig, info: ValidationInfo) -> GateConfig:
        recipe = info.data.get("recipe")
        if recipe is None or gate.metric is None:
            return gate
        allowed = GATE_METRICS[_method(recipe)]
        if gate.metric not in allowed:
            raise ValueError(f"metric {gate.metric!r} cannot gate a {_method(recipe)} loop; choose from {', '.join(allowed)}")
        return gate

    @property
    def generative(self) -> bool:
        """The loop ranks generated answers (any recipe but a `head`)."""
        return self.recipe.adapter != "head"

    @property
    def labeled_kind(self) -> str:
        """The record kind of the labeled rows and of the training dataset: sft, or preference for dpo / kto."""
        return LABELED_KINDS[_method(self.recipe)]

    @property
    def gate_metric(self) -> str:
        """The metric the gate compares: ``gate.metric``, else the default of the loop's method."""
        return self.gate.metric or GATE_METRICS[_method(self.recipe)][0]

    @property
    def feedback_name(self) -> str:
        """The store dataset of collected rows."""
        return self.feedback_dataset or f"{self.name}-feedback"


# fields that only one kind of loop reads: set on the other, they are refused rather than ignored
_INTENT_ONLY = {"select": {"uncertainty"}, "label": {"k", "labels"}}
_GENERATIVE_ONLY = {"select": {"reward_model"}, "label": {"question"}}


def _method(recipe: Recipe) -> str:
    return "head" if recipe.adapter == "head" else recipe.method


def load_loop(path: str | Path) -> LoopConfig:
    """Parse and validate a loop file; :class:`~curate.errors.ConfigError` names the line and field of each problem."""
    return load_yaml_model(path, LoopConfig)
