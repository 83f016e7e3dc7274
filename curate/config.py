"""Pipeline file models: the YAML is parsed into these and nothing else (the source of truth).

.. code-block:: yaml

    name: support
    source:                           # or a list of sources
      path: data/support_sample.jsonl # file, glob, or a dataset reference `name@N`
      format: auto
      kind: sft
      mapping: {user: instruction, assistant: response, label: category}
    stages:
      - dedup_exact: {}
      - split: {test: 0.1, validation: 0.1, stratify_by: label, seed: 0}
    output: support

``schemas/pipeline.schema.json`` is generated from these models (``curate schema``).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    BeforeValidator,
    Discriminator,
    Field,
    Tag,
    create_model,
    field_validator,
    model_validator,
)

from curate.errors import ConfigError
from curate.evaluate.config import EvaluateConfig
from curate.formats.table import mapping_problem
from curate.stages import registry
from curate.stages.base import StageConfig
from curate.train.recipe import Recipe
from curate.yamlfile import load_yaml_model

__all__ = ["DATASET_NAME", "PipelineConfig", "SourceConfig", "StageSpec", "load_pipeline"]

DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")

Format = Literal["auto", "messages", "alpaca", "sharegpt", "sharegpt_preference", "hh_rlhf", "kto", "table"]


def check_dataset_name(name: str) -> str:
    """Dataset names are one path segment: letters, digits, ``_``, ``-``, ``.``; no ``..``."""
    if not DATASET_NAME.fullmatch(name) or ".." in name:  # fullmatch: `$` accepts a final newline
        raise ValueError(
            f"{name!r} is not a valid dataset name: use letters, digits, '_', '-' and '.', "
            "start with a letter or digit, and no '..' or '/'"
        )
    return name


class SourceConfig(BaseModel):
    """One input: a file, a glob, or a stored dataset version."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(
        description="A file, a glob (`data/*.jsonl`), or a dataset reference `name@N` / `name`. "
        "Relative paths resolve against the pipeline file's folder."
    )
    format: Format = Field(
        "auto",
        description="How rows map to records. `auto` detects it from the first rows and fails "
        "with a clear message when it cannot tell.",
    )
    kind: Literal["sft", "preference", "prompt", "feedback"] | None = Field(
        None, description="Record kind; `None` infers it from the format and columns."
    )
    mapping: dict[str, str] | None = Field(
        None,
        description="For `table` format: record field -> input column. sft: user, assistant, system, "
        "label, id; preference: prompt, chosen, rejected, label, margin; prompt: prompt, label; "
        "feedback: prompt, completion, feedback, model, ts. Columns not mapped go to `meta`.",
    )

    @model_validator(mode="after")
    def _mapping_fits(self) -> SourceConfig:
        problem = mapping_problem(self.mapping, format=self.format, kind=self.kind)
        if problem:
            raise ValueError(problem)
        return self


class _StageEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StageSpec(BaseModel):
    """One resolved stage of a pipeline: its id, registered name and validated config."""

    id: str
    name: str
    config: StageConfig


_UNKNOWN = "__unknown_stage__"


def _stage_tag(value: Any) -> str | None:
    if isinstance(value, str):
        value = {value: None}
    if isinstance(value, dict) and len(value) == 1:
        name = next(iter(value))
        return name if name in registry.registered() else _UNKNOWN
    return None


class _UnknownStage(BaseModel):
    """Stands in for a stage name nobody registered: validation fails with suggestions."""

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        # matches nothing: with an empty object schema here, every stage would match two `oneOf` members
        return {"not": {}, "description": "A stage name nobody registered (rejected, as the loader does)."}

    @model_validator(mode="before")
    @classmethod
    def _fail(cls, value: Any) -> Any:
        name = next(iter(value)) if isinstance(value, dict) else value
        try:
            registry.get_stage(name)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return value


def _entry_input(value: Any) -> Any:
    """`- dedup_exact` and `- dedup_exact:` (null) both mean the stage with its defaults."""
    if isinstance(value, str):
        return {value: {}}
    if isinstance(value, dict) and len(value) == 1:
        ((name, cfg),) = value.items()
        return {name: {} if cfg is None else cfg}
    return value


@cache
def _stage_entry_type() -> Any:
    """``Annotated[Union[...]]`` of one single-key model per registered stage."""
    members = []
    for name, cls in registry.registered().items():
        entry = create_model(
            f"{name}_stage",
            __base__=_StageEntry,
            **{name: (cls.Config, Field(default_factory=cls.Config))},
        )
        members.append(Annotated[entry, Tag(name)])
    members.append(Annotated[_UnknownStage, Tag(_UNKNOWN)])
    return Annotated[
        Union[tuple(members)],  # noqa: UP007 - a dynamic union needs the Union form
        Discriminator(
            _stage_tag,
            custom_error_type="stage_entry",
            custom_error_message="Each stage is a map with exactly one key: the stage name.",
        ),
        BeforeValidator(_entry_input),
    ]


class _PipelineBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, description="Pipeline name (shown in logs); defaults to `output`.")
    source: SourceConfig | list[SourceConfig] = Field(description="Input(s); several sources are concatenated.")
    output: str = Field(description="Name of the dataset this pipeline writes in the store.")
    # where the stages run
    engine: Literal["local", "ray"] = Field(
        "local",
        description="Where the pipeline runs: `local` in this process, `ray` on a Ray cluster (input files read "
        "and converted, row stages, MinHash and embeddings in parallel; the other stages on the driver; see "
        "docs/engines.md). Same YAML, same result.",
    )
    ray_address: str | None = Field(
        None,
        description="Ray cluster address for `engine: ray` (e.g. `ray://head:10001` or `auto`); `None` "
        "joins the cluster this process started or starts a local one.",
    )
    train: Recipe | None = Field(
        None,
        description="Training recipe run on the version this pipeline writes (`dataset` unset) or on the "
        "version it names; `None` only curates. See docs/training.md.",
    )
    evaluate: EvaluateConfig | None = Field(
        None,
        description="Held-out evaluation of the run `train:` produces (overrides the recipe's own `evaluate:`); "
        "`None` evaluates only if the recipe asks. See docs/evaluation.md.",
    )

    @field_validator("output")
    @classmethod
    def _valid_output(cls, value: str) -> str:
        return check_dataset_name(value)

    @field_validator("stages", mode="before", check_fields=False)
    @classmethod
    def _no_stages(cls, value: Any) -> Any:
        return [] if value is None else value

    @model_validator(mode="after")
    def _evaluate_needs_train(self) -> _PipelineBase:
        if self.evaluate is not None and self.train is None:
            raise ValueError("`evaluate:` scores the run that `train:` produces; add a `train:` block or remove `evaluate:`")
        return self

    @model_validator(mode="after")
    def _one_kind(self) -> _PipelineBase:
        kinds = {s.kind for s in self.sources if s.kind}
        if len(kinds) > 1:
            raise ValueError(f"all sources must have the same kind, got {sorted(kinds)}")
        return self

    @model_validator(mode="after")
    def _stage_kinds_fit(self) -> _PipelineBase:
        problem = stage_kinds_problem(next((s.kind for s in self.sources if s.kind), None), self.stage_specs())
        if problem:
            raise ValueError(problem)
        return self

    @property
    def sources(self) -> list[SourceConfig]:
        """The sources as a list, whether the YAML gave one or several."""
        return self.source if isinstance(self.source, list) else [self.source]

    def stage_specs(self) -> list[StageSpec]:
        """Stages in order, each with a unique id (`quality`, `quality#2`, ...)."""
        specs, seen = [], {}
        for entry in self.stages:  # type: ignore[attr-defined]
            (name, config), = ((k, getattr(entry, k)) for k in type(entry).model_fields)
            seen[name] = seen.get(name, 0) + 1
            stage_id = name if seen[name] == 1 else f"{name}#{seen[name]}"
            specs.append(StageSpec(id=stage_id, name=name, config=config))
        return specs


def stage_kinds_problem(kind: str | None, specs: list[StageSpec]) -> str | None:
    """Why the stages cannot run in this order on ``kind`` rows (``None``: the kind is not known yet), or ``None``.

    Each stage's ``accepts`` must hold the kind it gets; a stage with ``produces`` (``generate``)
    changes it for the stages after it.
    """
    changed_by = None
    for spec in specs:
        cls = registry.get_stage(spec.name)
        if kind is not None and cls.accepts is not None and kind not in cls.accepts:
            origin = f"`{changed_by}` turns the rows into {kind} rows" if changed_by else f"the source has {kind} rows"
            return (
                f"stage {spec.id!r} reads {' or '.join(cls.accepts)} rows, but {origin}; "
                f"move or remove {spec.id!r}, or read a source of another kind"
            )
        if cls.produces is not None:
            kind, changed_by = cls.produces, spec.id
    return None


@cache
def pipeline_model() -> type[_PipelineBase]:
    """The pipeline model with a `stages` field over every registered stage."""
    return create_model(
        "Pipeline",
        __base__=_PipelineBase,
        stages=(list[_stage_entry_type()], Field(default_factory=list, description="Ordered stages; each a single-key map.")),
    )


PipelineConfig = _PipelineBase


def load_pipeline(path: str | Path) -> _PipelineBase:
    """Load and validate a pipeline file; errors name the file, line and field."""
    return load_yaml_model(path, pipeline_model())

