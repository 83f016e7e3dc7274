"""The steps of a generative loop that differ from an intent loop: propose, push and label.

* propose: a selected row with a user's correction becomes a labeled row directly (sft: prompt +
  correction; dpo / kto: chosen = correction, rejected = production answer); the other selected
  rows go through the ``generate`` stage (:func:`curate.loop.propose.propose_pairs`), the
  production answer being the ``reference`` candidate beside the generators' answers.
* push: the pairs to Argilla (:func:`curate.argilla.push.push_frame`: a ranking of the two
  answers by default); records already there are left alone.
* label: the answered records (:func:`curate.argilla.pull.pull_frame`, majority vote); the step
  stays open while any record is pending. The labeled pairs are written in the loop's kind
  (``preference``, or ``sft`` rows of prompt + chosen answer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl

from curate.feedback import correction
from curate.generate import GeneratorConfig
from curate.loop.config import LoopGenerateConfig
from curate.loop.propose import corrections_to_pairs, corrections_to_sft, pairs_to_sft, propose_pairs
from curate.records import SCHEMAS

if TYPE_CHECKING:
    from curate.loop.iteration import LoopContext
    from curate.loop.state import IterationState

Step = tuple[dict[str, Any], bool]


def _generators(ctx: LoopContext, current: str | None) -> list[GeneratorConfig]:
    """The loop's generators; none listed: the current run, greedy, looked up in the loop's runs folder."""
    block = ctx.config.generate or LoopGenerateConfig()  # LoopConfig requires the block for a generative recipe
    if block.generators:
        return list(block.generators)
    return [GeneratorConfig(model=str(current), runs_root=str(ctx.runs_root.resolve()))]


def _reasons(frame: pl.DataFrame) -> dict[str, int]:
    return dict(frame.group_by("reason").len().sort("reason").iter_rows()) if frame.height else {}


def propose(ctx: LoopContext, it: IterationState, rows: pl.DataFrame) -> Step:
    """Corrections -> labeled rows; the other selected ``rows`` -> pairs for annotators (``to_label.parquet``)."""
    block = ctx.config.generate or LoopGenerateConfig()
    fixed = pl.Series([correction(v) is not None for v in rows.get_column("feedback").to_list()], dtype=pl.Boolean)
    corrected = (corrections_to_sft if ctx.config.labeled_kind == "sft" else corrections_to_pairs)(rows.filter(fixed))
    asked = rows.filter(~fixed)
    current = it.outputs("select").get("current_run")
    generators = _generators(ctx, current)
    to_label, not_proposed = pl.DataFrame(schema=SCHEMAS["preference"]), {}
    if asked.height:
        result = propose_pairs(asked, generators=generators, n=block.n, judge=block.judge, seed=block.seed,
                               base_dir=ctx.base_dir, runs_root=str(ctx.runs_root.resolve()), env=ctx.env)  # fmt: skip
        to_label, not_proposed = result.kept.select(list(SCHEMAS["preference"])), _reasons(result.removed)
    unpaired = int(fixed.sum()) - corrected.height  # a correction with no served answer to reject (dpo / kto)
    if unpaired:
        not_proposed["correction_without_answer"] = unpaired
    corrected.write_parquet(it.path("corrections.parquet"))
    to_label.write_parquet(it.path("to_label.parquet"))
    return {"corrections": corrected.height, "to_label": to_label.height, "not_proposed": not_proposed,
            "generators": [g.model for g in generators]}, True  # fmt: skip


def push(ctx: LoopContext, it: IterationState, dataset: str) -> Step:
    """Push the pairs to ``dataset`` in Argilla (records already there are left alone)."""
    from curate.argilla.push import push_frame

    to_label = pl.read_parquet(it.folder / "to_label.parquet")
    if to_label.height == 0:
        return {"dataset": None, "created": 0, "existing": 0}, True
    label, block = ctx.config.label, ctx.config.generate or LoopGenerateConfig()
    result = push_frame(to_label, client=ctx.argilla(), ref=f"loop:{ctx.config.name}/{it.number}", dataset=dataset,
                        workspace=label.workspace, question=label.question, seed=block.seed)  # fmt: skip
    return {"dataset": result.dataset, "workspace": result.workspace, "url": result.url, "created": result.created,
            "existing": result.existing}, True  # fmt: skip


def label(ctx: LoopContext, it: IterationState) -> Step:
    """Pull the answered pairs (majority vote); not done while any record is pending."""
    from curate.argilla.pull import pull_frame

    kind = ctx.config.labeled_kind
    if not it.outputs("push").get("dataset"):
        pl.DataFrame(schema=SCHEMAS[kind]).write_parquet(it.path("labeled.parquet"))
        return {"answered": 0, "pending": 0, "removed": {}}, True
    pulled = pull_frame(ctx.argilla(), it.outputs("push")["dataset"], workspace=ctx.config.label.workspace)
    outputs = {"answered": pulled.answered, "pending": pulled.pending, "removed": _reasons(pulled.removed)}
    if pulled.pending:
        return outputs, False
    kept = pulled.kept.select(list(SCHEMAS["preference"]))
    (pairs_to_sft(kept) if kind == "sft" else kept).write_parquet(it.path("labeled.parquet"))
    return outputs, True
