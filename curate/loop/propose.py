"""The loop's *propose* step: what annotators see beside each selected production row.

* Intent data: the ``head`` run's top-k labels with their probabilities
  (:func:`propose_labels`), shown in Argilla as suggestions (:mod:`curate.argilla.intent`).
* Generative data: the production answer beside new candidates from the ``generate`` stage, as
  preference pairs for annotators to judge (:func:`propose_pairs`).
* A user's corrected answer needs no annotator: it becomes an ``sft`` row directly
  (:func:`corrections_to_sft`), or a ``preference`` row whose chosen answer is the correction
  and rejected answer the production one (:func:`corrections_to_pairs`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from curate.errors import CurateError
from curate.feedback import correction, parse_feedback
from curate.records import SCHEMAS, build_frame

if TYPE_CHECKING:
    from curate.evaluate.config import JudgeConfig
    from curate.generate import GeneratorConfig
    from curate.stages.base import StageResult

__all__ = ["corrections_to_pairs", "corrections_to_sft", "intent_texts", "pairs_to_sft", "propose_labels", "propose_pairs"]


def intent_texts(frame: pl.DataFrame) -> list[str]:
    """The text a ``head`` run classifies, per row: the user turns of ``messages`` (sft) or ``prompt``."""
    from curate.train.data import head_text

    column = "messages" if "messages" in frame.columns else "prompt"
    if column not in frame.columns:
        raise CurateError(f"Rows to label need a `messages` or `prompt` column; these have {', '.join(frame.columns)}.")
    return [head_text(messages or []) for messages in frame[column].to_list()]


def propose_labels(
    frame: pl.DataFrame,
    *,
    head_run: str | Path,
    k: int = 3,
    runs_root: str | Path = "runs",
    device: str | None = None,
) -> pl.DataFrame:
    """``frame`` with the ``head`` run's ``k`` most likely labels per row and their probabilities.

    Parameters
    ----------
    frame
        ``sft`` rows (their user turns are classified), or ``prompt`` / ``feedback`` rows (their
        ``prompt``).
    head_run
        A run trained with adapter ``head``: its folder, or its id under ``runs_root``.
    k
        Labels kept per row (fewer when the head knows fewer labels).
    runs_root
        Where run ids are looked up.
    device
        Where the encoder runs (``cpu``, ``cuda``); ``None``: CUDA when available.

    Returns
    -------
    The input columns plus ``suggested_labels: list[str]`` (most likely first) and
    ``suggested_scores: list[float]`` (softmax probabilities, same order).

    Example
    -------
    >>> propose_labels(failures, head_run="head-sft-20261202-061500-ab12cd", k=3)["suggested_labels"][0]
    ['card_arrival', 'card_delivery_estimate', 'lost_or_stolen_card']
    """
    import torch

    from curate.evaluate.models import load_model, resolve_target

    if k < 1:
        raise CurateError(f"propose_labels needs k >= 1 labels per row; got k={k}.")
    texts = intent_texts(frame)
    labels: list[list[str]] = []
    scores: list[list[float]] = []
    if texts:
        ref = resolve_target(head_run, runs_root=runs_root, role="classifier")
        model = load_model(ref, device=device).model
        if not hasattr(model, "logits") or not hasattr(model, "labels"):
            raise CurateError(
                f"{ref.name} is not a `head` run (adapter `head`: an encoder plus a label head); label suggestions "
                "need one. Train it with a recipe like pipelines/train-intent-head.yaml."
            )
        probs = torch.softmax(model.logits(texts).float(), dim=-1)
        top = torch.topk(probs, k=min(k, probs.shape[1]), dim=-1)
        labels = [[model.labels[i] for i in row] for row in top.indices.tolist()]
        scores = [[round(p, 6) for p in row] for row in top.values.tolist()]
    return frame.with_columns(
        suggested_labels=pl.Series(labels, dtype=pl.List(pl.String)),
        suggested_scores=pl.Series(scores, dtype=pl.List(pl.Float64)),
    )


def _label(row: Mapping[str, Any]) -> str | None:
    """A feedback row's label when one is known: a ``label`` column, else ``meta.label``."""
    if row.get("label") is not None:
        return str(row["label"])
    meta = json.loads(row.get("meta") or "{}")
    return str(meta["label"]) if meta.get("label") is not None else None


def _feedback_meta(row: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """The row's own meta plus where it came from (``meta.feedback``: id, model, ts, answer, feedback)."""
    meta = json.loads(row.get("meta") or "{}")
    meta["feedback"] = {
        "id": row["id"],
        "model": row.get("model"),
        "ts": row.get("ts"),
        "completion": [dict(m) for m in row.get("completion") or []],
        "fields": parse_feedback(row.get("feedback")),
        **extra,
    }
    return meta


def _corrected_rows(kind: str, records: list[dict[str, Any]], *, check: str) -> pl.DataFrame:
    """Valid ``kind`` rows of the corrections; one error for the lot when any is invalid."""
    valid, invalid = build_frame(kind, records)
    if invalid.height:
        first = invalid.row(0, named=True)
        raise CurateError(
            f"{invalid.height} corrected feedback rows do not make valid {kind} rows (first: {first['reason']}, "
            f"{first['detail']}); check {check}."
        )
    return valid


def corrections_to_sft(feedback_frame: pl.DataFrame) -> pl.DataFrame:
    """``sft`` rows from the feedback rows whose ``feedback`` carries a ``correction``.

    Each becomes the row's ``prompt`` followed by the corrected answer as the assistant turn,
    labeled already (no annotator needed). ``label`` is the row's ``label`` column or
    ``meta.label`` when known; ``meta.feedback`` links back to the feedback row (``id``) and
    keeps the production answer it replaced. Rows without a correction are not returned.

    Example
    -------
    >>> corrections_to_sft(store.kept("prod-feedback@4"))["messages"][0][-1]
    {'role': 'assistant', 'content': 'It ships tomorrow.'}
    """
    records = []
    for row in feedback_frame.iter_rows(named=True):
        fixed = correction(row.get("feedback"))
        if fixed is None:
            continue
        records.append({
            "messages": [dict(m) for m in row["prompt"]] + [{"role": "assistant", "content": fixed}],
            "label": _label(row),
            "source": row.get("source"),
            "meta": _feedback_meta(row, kind="correction"),
        })  # fmt: skip
    return _corrected_rows("sft", records, check="their prompt")


def corrections_to_pairs(feedback_frame: pl.DataFrame) -> pl.DataFrame:
    """``preference`` rows from the feedback rows whose ``feedback`` carries a ``correction``:
    chosen is the correction, rejected the production answer (the completion's last message).

    Rows without a correction, or without a production answer to reject, are not returned;
    ``meta.feedback`` links back as in :func:`corrections_to_sft`.
    """
    records = []
    for row in feedback_frame.iter_rows(named=True):
        fixed, served = correction(row.get("feedback")), [dict(m) for m in row.get("completion") or []][-1:]
        if fixed is None or not served or not served[0].get("content"):
            continue
        records.append({
            "prompt": [dict(m) for m in row["prompt"]], "chosen": [{"role": "assistant", "content": fixed}],
            "rejected": served, "label": _label(row), "source": row.get("source"), "meta": _feedback_meta(row, kind="correction"),
        })  # fmt: skip
    return _corrected_rows("preference", records, check="their prompt and answer")


def pairs_to_sft(pairs: pl.DataFrame) -> pl.DataFrame:
    """``sft`` rows from ``preference`` rows: the prompt followed by the chosen answer (the rejected one is dropped)."""
    records = [
        {"messages": [dict(m) for m in row["prompt"]] + [dict(m) for m in row["chosen"]], "label": row.get("label"),
         "source": row.get("source"), "meta": json.loads(row.get("meta") or "{}")}
        for row in pairs.iter_rows(named=True)
    ]  # fmt: skip
    valid, invalid = build_frame("sft", records)
    if invalid.height:
        first = invalid.row(0, named=True)
        raise CurateError(f"{invalid.height} labeled pairs do not make valid sft rows (first: {first['reason']}, {first['detail']}).")
    return valid


def propose_pairs(
    feedback_frame: pl.DataFrame,
    *,
    generators: list[GeneratorConfig],
    n: int = 1,
    judge: JudgeConfig | None = None,
    seed: int = 0,
    base_dir: str | Path = ".",
    runs_root: str = "runs",
    env: Mapping[str, str] | None = None,
) -> StageResult:
    """Preference pairs for annotators: the production answer beside new candidates, by the ``generate`` stage.

    Each feedback row becomes an ``sft`` row (its prompt, then its production answer) that the
    ``generate`` stage answers again with every generator; the production answer takes part as
    the candidate named ``reference``. The pairs keep the feedback row's id in
    ``meta.generate.from_id`` and ``meta.feedback``.

    Parameters
    ----------
    feedback_frame
        ``feedback`` rows (``prompt``, ``completion``, ``feedback``, ``model``, ``ts``).
    generators, n, judge, seed, runs_root
        As in the ``generate`` stage (:class:`curate.stages.generate.GenerateConfig`); without a
        judge the pairs are left unranked (margin null), for annotators.
    base_dir
        Folder relative model paths and ``runs_root`` resolve against.
    env
        Environment for generators that connect to a server (``openai`` backend credentials).

    Returns
    -------
    The stage's result: ``kept`` preference rows, ``removed`` rows (with the feedback id as
    ``id``) with the stage's reasons (``generation_failed``, ``empty_generation``, ...).
    """
    from curate.stages.base import StageContext
    from curate.stages.generate import Generate, GenerateConfig

    rows = [  # the production answer (the completion's last message) is the reference candidate
        {"id": row["id"], "source": row.get("source"), "label": _label(row),
         "messages": [dict(m) for m in row["prompt"]] + [dict(m) for m in row["completion"] or []][-1:],
         "meta": json.dumps(_feedback_meta(row, kind="production"), ensure_ascii=False, sort_keys=True)}
        for row in feedback_frame.iter_rows(named=True)
    ]  # fmt: skip
    frame = pl.DataFrame(rows, schema=SCHEMAS["sft"]).select(list(SCHEMAS["sft"]))
    config = GenerateConfig(
        generators=generators, n=n, include_reference=True, judge=judge, runs_root=runs_root, seed=seed
    )
    ctx = StageContext(dataset="loop", kind="sft", base_dir=Path(base_dir), stage_id="propose", env=dict(env or {}))
    return Generate(config).apply(frame, ctx)
