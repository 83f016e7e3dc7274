"""The steps of one loop iteration; each reads what earlier steps recorded and returns ``(outputs, done)``.

Intent and generative loops share collect, select, merge, train and gate; propose, push and label
of a generative loop are in :mod:`curate.loop._steps_generative`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from curate.feedback import correction
from curate.loop import _steps_generative as generative
from curate.loop.collect import collect as collect_rows
from curate.loop.gate import decide
from curate.loop.merge import commit_labeled, merge_training
from curate.loop.propose import corrections_to_sft, intent_texts, propose_labels
from curate.loop.select import reason_counts, select_rows
from curate.loop.strategies import uncertainty
from curate.records import SCHEMAS

if TYPE_CHECKING:
    from curate.loop.iteration import LoopContext
    from curate.loop.state import IterationState

Step = tuple[dict[str, Any], bool]

log = logging.getLogger(__name__)


def collect(ctx: LoopContext, it: IterationState) -> dict[str, Any] | None:
    """New production rows -> a version of the loop's feedback dataset; ``None`` when nothing is new."""
    got = collect_rows(ctx.config.collect, store=ctx.store, feedback_name=ctx.config.feedback_name,
                       base_dir=ctx.base_dir, iteration=it.number)  # fmt: skip
    if got.version is None:
        return None
    return {"feedback": f"{ctx.config.feedback_name}@{got.version}", "rows": got.rows.height, **got.lineage}


def _head(ctx: LoopContext, run: str | None) -> Any:
    """The current run's classifier (encoder + head), or ``None`` when there is no ``head`` run."""
    if run is None:
        return None
    from curate.evaluate.models import load_model, resolve_target

    ref = resolve_target(run, runs_root=ctx.runs_root)
    if ref.role != "classifier":
        return None
    model = load_model(ref, device="cpu").model
    return model if hasattr(model, "logits") and hasattr(model, "labels") else None


def _probs(model: Any, texts: list[str]) -> np.ndarray | None:
    import torch

    if model is None or not texts:
        return None
    return torch.softmax(model.logits(texts).float(), dim=-1).cpu().numpy()


def _uncertainty(ctx: LoopContext, rows: pl.DataFrame, texts: list[str]) -> np.ndarray | None:
    """How unsure the current model is per row: its head's class probabilities, or a causal LM's answer score."""
    if ctx.config.generative:
        from curate.loop.answer_scores import answer_uncertainty

        return answer_uncertainty(rows, run=ctx.current_run(), reward_model=ctx.config.select.reward_model,
                                  runs_root=ctx.runs_root)  # fmt: skip
    probs = _probs(_head(ctx, ctx.current_run()), texts)
    return uncertainty(probs, ctx.config.select.uncertainty) if probs is not None else None


def select(ctx: LoopContext, it: IterationState) -> Step:
    """Every collected row selected or not, with a reason; ``selection.parquet`` and per-reason counts."""
    from curate.embeddings import embed

    config = ctx.config
    rows = ctx.store.kept(it.outputs("collect")["feedback"])
    name, version = ctx.store.resolve(config.training)
    training = ctx.store.kept(f"{name}@{version}", split="train")
    texts = intent_texts(rows)
    cache = ctx.store.cache_dir("embeddings")
    selection = select_rows(
        rows, texts=texts, training_texts=intent_texts(training), budget=config.budget, config=config.select,
        embed=lambda t: embed(t, cache_dir=cache), uncertainty=_uncertainty(ctx, rows, texts),
    )  # fmt: skip
    selection.write_parquet(it.path("selection.parquet"))
    return {"training": f"{name}@{version}", "counts": reason_counts(selection), "current_run": ctx.current_run()}, True


def _label_set(ctx: LoopContext, training: str) -> list[str]:
    if ctx.config.label.labels:
        return list(ctx.config.label.labels)
    return sorted(ctx.store.kept(training).get_column("label").drop_nulls().unique().to_list())


def propose(ctx: LoopContext, it: IterationState) -> Step:
    """Corrections become labeled rows; the other selected rows get the head's label suggestions (intent) or
    generated candidates beside the production answer (generative)."""
    rows = ctx.store.kept(it.outputs("collect")["feedback"]).drop("split")
    chosen = pl.read_parquet(it.folder / "selection.parquet").filter("selected").get_column("id")
    rows = rows.filter(pl.col("id").is_in(chosen.to_list()))
    if ctx.config.generative:
        return generative.propose(ctx, it, rows)
    labels = _label_set(ctx, it.outputs("select")["training"])
    fixed = pl.Series([correction(v) in labels for v in rows.get_column("feedback").to_list()], dtype=pl.Boolean)
    corrected = corrections_to_sft(rows.filter(fixed))
    corrected = corrected.with_columns(label=pl.col("messages").list.last().struct.field("content"))
    to_label = rows.filter(~fixed)
    run = it.outputs("select").get("current_run")
    if run is not None and _head(ctx, run) is not None:
        to_label = propose_labels(to_label, head_run=run, k=ctx.config.label.k, runs_root=ctx.runs_root, device="cpu")
    corrected.write_parquet(it.path("corrections.parquet"))
    to_label.write_parquet(it.path("to_label.parquet"))
    return {"labels": labels, "corrections": corrected.height, "to_label": to_label.height}, True


def _argilla_name(ctx: LoopContext, it: IterationState) -> str:
    return f"{ctx.config.label.dataset or ctx.config.name}-{it.number}"


def push(ctx: LoopContext, it: IterationState) -> Step:
    """Push the rows to label to this iteration's Argilla dataset (records already there are left alone)."""
    from curate.argilla.intent import push_intent

    if ctx.config.generative:
        return generative.push(ctx, it, _argilla_name(ctx, it))
    to_label = pl.read_parquet(it.folder / "to_label.parquet")
    if to_label.height == 0:
        return {"dataset": None, "created": 0, "existing": 0}, True
    label = ctx.config.label
    result = push_intent(to_label, client=ctx.argilla(), dataset=_argilla_name(ctx, it), labels=it.outputs("propose")["labels"],
                         ref=f"loop:{ctx.config.name}/{it.number}", workspace=label.workspace,
                         min_submitted=label.min_submitted)  # fmt: skip
    return {"dataset": result.dataset, "workspace": result.workspace, "url": result.url, "created": result.created,
            "existing": result.existing}, True  # fmt: skip


def label(ctx: LoopContext, it: IterationState) -> Step:
    """Pull the answered records (majority label or preferred answer); not done while any record is pending."""
    from curate.argilla.intent import pull_intent

    if ctx.config.generative:
        return generative.label(ctx, it)
    if not it.outputs("push").get("dataset"):
        pl.DataFrame(schema=SCHEMAS["sft"]).write_parquet(it.path("labeled.parquet"))
        return {"answered": 0, "pending": 0, "removed": {}}, True
    pulled = pull_intent(it.outputs("push")["dataset"], client=ctx.argilla(), workspace=ctx.config.label.workspace)
    removed = dict(pulled.removed.group_by("reason").len().iter_rows()) if pulled.removed.height else {}
    outputs = {"answered": pulled.answered, "pending": pulled.pending, "removed": removed}
    if pulled.pending:
        return outputs, False
    pulled.labeled.write_parquet(it.path("labeled.parquet"))
    return outputs, True


def merge(ctx: LoopContext, it: IterationState) -> Step:
    """Labeled rows and corrections -> ``<loop>-labeled`` (with a held-out share) -> the next training version."""
    kind = ctx.config.labeled_kind
    labeled = pl.concat([pl.read_parquet(it.folder / "labeled.parquet"), pl.read_parquet(it.folder / "corrections.parquet")],
                        how="diagonal_relaxed").select(list(SCHEMAS[kind]))  # fmt: skip
    if labeled.height < 2:
        return {"labeled_rows": labeled.height, "labeled": None, "training": None}, True
    lineage = {"loop": ctx.config.name, "loop_iteration": it.number, "feedback": it.outputs("collect")["feedback"],
               "argilla": it.outputs("push").get("dataset")}  # fmt: skip
    gate = ctx.config.gate
    labeled_ref = commit_labeled(labeled, store=ctx.store, name=f"{ctx.config.name}-labeled", kind=kind,
                                 holdout=gate.failures_holdout, seed=gate.seed,
                                 lineage={**lineage, "parents": [lineage["feedback"]]})  # fmt: skip
    training = merge_training(ctx.store, training=it.outputs("select")["training"], labeled=labeled_ref, lineage=lineage)
    return {"labeled_rows": labeled.height, "labeled": labeled_ref, "training": training}, True


def train(ctx: LoopContext, it: IterationState) -> Step:
    """Train the loop's recipe on the merged version (and evaluate it when the recipe says so).

    A call killed while training left an unfinished run of this recipe on this version: it is
    resumed (from its last checkpoint, when it wrote one) rather than started again.
    """
    from curate.orchestrate import train_and_evaluate
    from curate.train.recipe import Recipe
    from curate.train.runner import local_paths, resumable_run

    training = it.outputs("merge").get("training")
    if training is None:
        return {"run": None, "skipped": "fewer than 2 labeled rows: nothing to train on"}, True
    recipe = local_paths(ctx.config.recipe, ctx.base_dir)
    recipe = Recipe.model_validate({**recipe.model_dump(), "dataset": training, "output_dir": str(ctx.runs_root)})
    unfinished = resumable_run(recipe, store=ctx.store.root)
    if unfinished is not None:
        log.info("loop %s iteration %d: resuming the unfinished run %s", ctx.config.name, it.number, unfinished.name)
    result, _ = train_and_evaluate(recipe, store_root=ctx.store.root, resume=unfinished is not None, env=ctx.env)
    return {"run": result.run_id, "path": str(result.path), "dataset": training,
            "resumed": unfinished.name if unfinished is not None else None}, True  # fmt: skip


def _evaluate(ctx: LoopContext, run: str, *, dataset: str, baseline: str, metric: str) -> Any:
    from curate.evaluate.config import EvaluateConfig
    from curate.evaluate.run import eval_run

    config = EvaluateConfig(dataset=dataset, split="test", metrics=[metric], baseline=baseline)
    device = None if ctx.config.generative else "cpu"  # a causal LM where it runs fastest; the head on the CPU
    return eval_run(run, config=config, store_root=ctx.store.root, runs_root=ctx.runs_root, device=device, save=False)


def gate(ctx: LoopContext, it: IterationState) -> Step:
    """The new run against the current one on the held-out split and the held-out failures; report.md."""
    from curate.loop.report import write_report

    new_run, current = it.outputs("train").get("run"), it.outputs("select").get("current_run")
    merged = it.outputs("merge")
    if new_run is None:
        outputs = {"promoted": False, "run": current, "current": current, "reasons": ["no new run was trained"]}
    else:
        metric = ctx.config.gate_metric
        heldout = failures = None
        if current is not None:
            heldout = _evaluate(ctx, new_run, dataset=merged["training"], baseline=current, metric=metric)
            failures = _evaluate(ctx, new_run, dataset=merged["labeled"], baseline=current, metric=metric)
            heldout.save(it.path("eval_heldout.json"))  # every scored row, for a look at what changed
            failures.save(it.path("eval_failures.json"))
        decision = decide(heldout, failures, metric=metric)
        outputs = {**decision.to_dict(), "run": new_run if decision.promoted else current, "new_run": new_run,
                   "current": current}  # fmt: skip
    write_report(it, outputs)
    return outputs, True

