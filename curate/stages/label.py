"""``label``: preference pairs go to Argilla annotators; their answers decide chosen/rejected.

The first run pushes the frame's pairs to an Argilla dataset and stops with a clear message
(nothing is committed) because nobody has answered yet. Later runs push only pairs that are
new and keep the answered ones: chosen is the side the majority of annotators preferred;
ties, both-bad, discards and split votes are removed with that reason, and pairs still
waiting for an answer are removed as ``awaiting_annotation`` (a later run picks them up).

Credentials follow :mod:`curate.credentials`: the key comes only from ``ARGILLA_API_KEY`` in
the run's environment (``StageContext.env``, which the CLI fills from the process environment)
and is sent only to ``ARGILLA_API_URL`` (or the local default when it is unset). A ``url``
written here that differs from it gets no key, so the stage stops with an error naming both.

.. code-block:: yaml

    stages:
      - label: {dataset: support-prefs, workspace: argilla}
"""

from __future__ import annotations

from typing import Any, Literal

import polars as pl
from pydantic import Field, ValidationInfo, field_validator
from pydantic.json_schema import SkipJsonSchema

from curate.argilla.answers import parse_answers, resolve_answers
from curate.argilla.client import connect, iter_records, usernames
from curate.argilla.errors import NothingSubmittedError
from curate.argilla.push import push_frame
from curate.credentials import Credentials
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
    url: str | None = Field(
        None,
        description="Argilla server URL; `None` uses ARGILLA_API_URL, else http://127.0.0.1:6900 (the `curate "
        "argilla serve` default). The API key (ARGILLA_API_KEY) is sent only to ARGILLA_API_URL (or that default "
        "when it is unset): a different URL here gets no key.",
    )
    # Removed fields: a pipeline file must not choose which secret is sent, or where.
    api_key_env: SkipJsonSchema[Any] = Field(None, exclude=True)
    api_url_env: SkipJsonSchema[Any] = Field(None, exclude=True)
    default_url: SkipJsonSchema[Any] = Field(None, exclude=True)

    @field_validator("api_key_env", "api_url_env", "default_url")
    @classmethod
    def _removed(cls, value: Any, info: ValidationInfo) -> Any:
        raise ValueError(f"`{info.field_name}` was removed: {_REMOVED[info.field_name]}")


_REMOVED = {
    "api_key_env": "the API key comes only from ARGILLA_API_KEY, so that a pipeline file cannot send another "
    "environment secret to a server (docs/argilla.md, Credentials). Remove it and set ARGILLA_API_KEY",
    "api_url_env": "the URL comes from `url` or ARGILLA_API_URL (docs/argilla.md, Credentials). Remove it",
    "default_url": "it is now `url`, which gets the API key only when it equals ARGILLA_API_URL (docs/argilla.md, "
    "Credentials). Rename it to `url`, or remove it to use ARGILLA_API_URL",
}


@register
class Label(Stage):
    """Push pairs to Argilla, then keep the answered ones with the annotators' choice as chosen."""

    name = "label"
    Config = LabelConfig
    accepts = ("preference",)

    def apply(self, frame: pl.DataFrame, ctx: StageContext) -> StageResult:
        cfg: LabelConfig = self.config
        if ctx.kind != "preference":
            raise StageError(
                f"Stage {ctx.stage_id!r} (label) needs preference rows; this pipeline reads {ctx.kind} rows."
            )
        creds = _credentials(cfg, ctx)
        url = creds.url
        dataset = cfg.dataset or ctx.dataset
        client = connect(url, creds.key)
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


def _credentials(cfg: LabelConfig, ctx: StageContext) -> Credentials:
    """URL and key by the credentials rule; an error naming the variable and URL when there is no key."""
    creds = Credentials.resolve("argilla", url_from_file=cfg.url, env=ctx.env)
    if creds.note is not None:
        raise StageError(f"Stage {ctx.stage_id!r} (label) has no API key for Argilla at {creds.url}: {creds.note}")
    if creds.key is None:
        hint = (
            "set ARGILLA_API_KEY (`curate argilla serve` starts a local server and says how)"
            if ctx.env
            else "the runner passed no environment to the stages: call run_pipeline(..., env=os.environ)"
        )
        raise StageError(
            f"Stage {ctx.stage_id!r} (label) needs an Argilla API key for {creds.url} (from {creds.url_from}): {hint}."
        )
    return creds
