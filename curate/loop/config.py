"""A loop file: where production rows come from, what to label, how to retrain and when to promote.

.. code-block:: yaml

    name: support
    training: intents              # the store dataset the loop extends (its latest version)
    model: intent-head-20261202-...  # the run serving now; later iterations use the promoted run
    collect: {files: {path: data/feedback/*.jsonl, format: auto}}
    budget: 50
    recipe: {model: all-MiniLM-L6-v2, method: sft, adapter: head, training: {epochs: 30}}
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from curate.config import SourceConfig
from curate.loop.strategies import Uncertainty
from curate.train.recipe import Recipe
from curate.yamlfile import load_yaml_model

__all__ = ["CollectConfig", "GateConfig", "LabelConfig", "LoopConfig", "SelectConfig", "load_loop"]


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
        "margin", description="Uncertainty of a `head` model's class probabilities: least_confidence, margin or entropy."
    )
    min_uncertainty: float = Field(
        0.5, ge=0.0, description="A row that is not a failure is `confident` when its uncertainty is below this and "
        "its novelty below `min_novelty`. Entropy is in nats (up to ln(classes)).",
    )
    min_novelty: float = Field(
        0.3, ge=0.0, le=2.0, description="Novelty (1 - max cosine to the training rows) from which a row is worth labeling."
    )
    duplicate_threshold: float = Field(
        0.95, gt=0.0, le=1.0, description="Cosine from which a row duplicates a training row or another candidate."
    )
    seed: int = Field(0, description="Seed of the k-means that spreads picks across clusters.")


class LabelConfig(_Block):
    """Argilla: the intent label question with the model's top-k suggestions."""

    url: str | None = Field(
        None, description="Argilla URL; `None`: ARGILLA_API_URL or the local default. The key (ARGILLA_API_KEY) is only "
        "sent to the URL configured in the environment.",
    )
    dataset: str | None = Field(None, description="Argilla dataset name prefix; each iteration pushes to `<prefix>-<iteration>`. "
                                "`None`: the loop's name.")
    workspace: str = Field("argilla", description="Argilla workspace.")
    k: int = Field(3, ge=1, description="Label suggestions shown per record.")
    min_submitted: int = Field(1, ge=1, description="Answers wanted per record.")
    labels: list[str] | None = Field(
        None, description="Label set annotators choose from; `None`: the labels of the training version."
    )


class GateConfig(_Block):
    """When the new run replaces the current one."""

    metric: str = Field("label_accuracy", description="Headline metric compared (higher is better).")
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
    recipe: Recipe = Field(description="How each iteration's run is trained (e.g. the `head` recipe of train-intent-head.yaml).")
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
    def _intent(cls, recipe: Recipe) -> Recipe:
        if recipe.adapter != "head":
            raise ValueError(
                f"the loop labels intents (adapter `head`); adapter {recipe.adapter!r} needs the generative path "
                "(preference pairs ranked in Argilla), which `curate loop run` does not run yet"
            )
        return recipe

    @property
    def feedback_name(self) -> str:
        """The store dataset of collected rows."""
        return self.feedback_dataset or f"{self.name}-feedback"


def load_loop(path: str | Path) -> LoopConfig:
    """Parse and validate a loop file; :class:`~curate.errors.ConfigError` names the line and field of each problem."""
    return load_yaml_model(path, LoopConfig)
