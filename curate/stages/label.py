"""``label``: preference pairs go to Argilla annotators; their answers decide chosen/rejected.

The first run pushes the frame's pairs to an Argilla dataset and stops with a clear message
(nothing is committed) because nobody has answered yet. Later runs push only pairs that are
new and keep the answered ones: chosen is the side the majority of annotators preferred;
ties, both-bad, discards and split votes are removed with that reason, and pairs still
waiting for an answer are removed as ``awaiting_annotation`` (a later run picks them up).

Credentials come from the run's environment (``StageContext.env``, which the CLI fills from
the process environment) under the variable names the config gives, never from the YAML.

.. code-block:: yaml

    stages:
      - label: {dataset: support-prefs, workspace: argilla}
"""

from __future__ import annotations

from typing import Literal

import polars as pl
from pydantic import Field

from curate.argilla.answers import parse_answers, resolve_answers
from curate.argilla.client import connect, iter_records, usernames
from curate.argilla.errors import NothingSubmittedError
from curate.argilla.push import push_frame
from curate.errors import StageError
from curate.stages.base import Stage, StageConfig, StageContext, StageResult
from curate.stages.registry import register


class LabelConfig(StageConfig):
    """Where the pairs are labelled and how the answers become rows."""

    dataset: str | None = Field(None, description="Argilla dataset name; `None` uses the pipeline's output name.")
    workspace: str = Field("argilla", description="Argilla workspace holding the dataset.")
    question: Literal["label", "ranking"] = Field(
        "label", description="`label`: A / B / tie / both bad; `ranking`: rank A and B (equal ranks are a tie)."
    )
    rationale: bool = Field(True, description="Ask annotators for an optional free-text rationale.")
    seed: int = Field(0, description="Seed of the per-pair coin flip deciding which candidate is shown as A.")
    api_url_env: str = Field("ARGILLA_API_URL", description="Environment variable holding the Argilla URL.")
    api_key_env: str = Field("ARGILLA_API_KEY", description="Environment variable holding an owner/admin API key.")
    default_url: str = Field(
        "http://127.0.0.1:6900",
        description="URL used when `api_url_env` is unset (the `curate argilla serve` default).",
    )


@register
class Label(Stage):
    """Push pairs to Argilla, then keep the answered ones with the annotators' choice as chosen."""

    name = "label"
    Config = LabelConfig

    def apply(self, frame: pl.DataFrame, ctx: StageContext) -> StageResult:
        cfg: LabelConfig = self.config
        if ctx.kind != "preference":
            raise StageError(
                f"Stage {ctx.stage_id!r} (label) needs preference rows; this pipeline reads {ctx.kind} rows."
            )
        api_key = ctx.env.get(cfg.api_key_env)
        if not api_key:
            hint = (
                "set it (run `curate argilla serve` for a local server)"
                if ctx.env
                else "the runner passed no environment to the stages: call run_pipeline(..., env=os.environ)"
            )
            raise StageError(
                f"Stage {ctx.stage_id!r} (label) needs an Argilla API key in the environment variable "
                f"{cfg.api_key_env}; {hint}."
            )
        url = ctx.env.get(cfg.api_url_env) or cfg.default_url
        dataset = cfg.dataset or ctx.dataset
        client = connect(url, api_key)
        pushed = push_frame(
            frame,
            client=client,
            ref=f"pipeline:{ctx.dataset}",
            dataset=dataset,
            workspace=cfg.workspace,
            question=cfg.question,
            rationale=cfg.rationale,
            seed=cfg.seed,
        )
        ids = set(frame["id"].to_list())
        records = [r for r in iter_records(client, pushed.dataset_id, responses=True) if r["external_id"] in ids]
        answers, _ = parse_answers(records, users=usernames(client))
        if not answers:
            raise NothingSubmittedError(
                f"Stage {ctx.stage_id!r} (label): {pushed.created} new pairs pushed to Argilla dataset {dataset!r} "
                f"at {url} ({frame.height} in all); nobody has answered them yet. Annotate, then run the "
                "pipeline again. Nothing was committed."
            )
        argilla = {"url": url, "workspace": cfg.workspace, "dataset": dataset}
        answered = {a.row_id for a in answers}
        kept, removed = resolve_answers(frame.filter(pl.col("id").is_in(list(answered))), answers, argilla=argilla)
        waiting = frame.filter(~pl.col("id").is_in(list(answered))).with_columns(
            reason=pl.lit("awaiting_annotation"), detail=pl.lit(None, pl.String)
        )
        return StageResult(
            kept=kept.select(frame.columns),
            removed=pl.concat([removed, waiting], how="diagonal_relaxed"),
            stats={"argilla": argilla, "pushed": pushed.created, "answered": len(answers), "waiting": waiting.height},
        )
