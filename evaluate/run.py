"""``curate eval``: score a run (or a model) on a dataset version's held-out split, against a baseline.

One call loads the target and its baseline once, computes the configured metrics with paired
bootstrap intervals (the same resamples for model, baseline and their difference), writes
``runs/<id>/eval/<name@N>.json`` plus a Markdown/HTML report, and records the headline
numbers under ``evaluation`` in the run's manifest.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from curate.errors import ConfigError, CurateError
from curate.store import Store

from ._tokenize import plain_messages, prompt_and_answer
from .bootstrap import bootstrap_ci
from .classification import confusion_matrix, match_label
from .config import GENERATION_METRICS, EvaluateConfig
from .heldout import check_held_out
from .models import LoadedModel, ModelRef, load_model, resolve_target
from .results import EvalResult, MetricResult

__all__ = ["eval_run", "evaluate_after_training", "output_stem"]

log = logging.getLogger(__name__)

IndexStat = Callable[[np.ndarray], float]


def output_stem(dataset: str, split: str) -> str:
    """File stem of a result: ``support@3`` for the test split, ``support@3.validation`` otherwise."""
    return dataset if split == "test" else f"{dataset}.{split}"


@dataclass
class _Ctx:
    config: EvaluateConfig
    n: int

    def headline(self, name: str, model: IndexStat, base: IndexStat | None = None) -> MetricResult:
        """Intervals of a statistic over row indices for the model, the baseline and their difference."""
        b = self.config.bootstrap
        kw = {"resamples": b.resamples, "confidence": b.confidence, "seed": b.seed}
        idx = np.arange(self.n)

        def as_int(stat: IndexStat) -> IndexStat:
            return lambda i: stat(i.astype(int))

        mi = bootstrap_ci(idx, statistic=as_int(model), **kw)
        if base is None:
            return MetricResult.of(name, mi)
        bi = bootstrap_ci(idx, statistic=as_int(base), **kw)
        di = bootstrap_ci(idx, statistic=as_int(lambda i: model(i) - base(i)), **kw)
        return MetricResult.of(name, mi, baseline=bi, diff=di)


def _mean_stat(values: list[float]) -> IndexStat:
    arr = np.asarray(values, dtype=float)
    return lambda i: float(arr[i].mean())


def _resolve_dataset(store: Store, config: EvaluateConfig, target: ModelRef) -> str:
    ref = config.dataset or target.trained_on
    if ref is None:
        raise ConfigError(
            f"No dataset to evaluate {target.name} on: it is not a curate run (no manifest naming its training "
            "version), so pass --dataset NAME@N (or set `evaluate.dataset`)."
        )
    name, version = store.resolve(ref)
    return f"{name}@{version}"


def _baseline_ref(config: EvaluateConfig, target: ModelRef, runs_root: Path, notes: list[str]) -> ModelRef | None:
    if config.baseline is None:
        return None
    if config.baseline == "base":
        if target.base_model is None:
            notes.append(f"No baseline: {target.name} is not a run, so it has no recorded base model.")
            return None
        if target.role != "causal_lm":
            notes.append(f"No baseline: the base model of a {target.role} run has no trained scoring head.")
            return None
        return ModelRef(name=f"base ({target.base_model})", path=_as_path(target.base_model), role="causal_lm")
    return resolve_target(config.baseline, runs_root=runs_root)


def _as_path(model: str) -> Path | str:
    return Path(model) if Path(model).exists() else model


def _head_predict(loaded: LoadedModel, texts: list[str], *, batch_size: int) -> list[str]:
    """Labels predicted by a classifier: a ``head`` run (encoder + linear head) or a sequence-classification model."""
    import torch

    model, tok = loaded.pair
    if hasattr(model, "predict"):  # curate.train.head.HeadClassifier
        return list(model.predict(texts))
    id2label = {int(k): v for k, v in model.config.id2label.items()}
    out: list[str] = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            enc = tok(texts[start : start + batch_size], return_tensors="pt", padding=True, truncation=True)
            logits = model(**{k: v.to(model.device) for k, v in enc.items()}).logits
            out.extend(id2label[int(i)] for i in logits.argmax(-1).tolist())
    return out


def _user_text(messages: list[dict[str, Any]]) -> str:
    """The text a `head` run classifies: the turns before the first assistant turn (as curate.train builds it)."""
    turns = []
    for m in messages:
        if m["role"] == "assistant":
            break
        turns.append(m["content"])
    return "\n\n".join(t for t in turns if t)


def _recipe_beta(ref: ModelRef) -> float:
    if ref.run_dir is not None and (ref.run_dir / "recipe.yaml").is_file():
        import yaml

        recipe = yaml.safe_load((ref.run_dir / "recipe.yaml").read_text(encoding="utf-8")) or {}
        beta = (recipe.get("rl") or {}).get("beta")
        if beta is not None:
            return float(beta)
    return 0.1


def eval_run(
    target: str | Path,
    *,
    config: EvaluateConfig | None = None,
    store_root: str | Path = "datasets",
    runs_root: str | Path = "runs",
    out_dir: str | Path | None = None,
    device: str | None = None,
    save: bool = True,
) -> EvalResult:
    """Evaluate a run or model on a dataset version's held-out split.

    Parameters
    ----------
    target
        A run folder, a run id under ``runs_root``, or a model folder.
    config
        What to compute (:class:`~.config.EvaluateConfig`); ``None`` uses its defaults: the
        run's training version, its ``test`` split, loss + exact match + token F1 + ROUGE-L,
        compared with the run's base model.
    store_root
        Dataset store root.
    runs_root
        Where run ids are looked up.
    out_dir
        Where the JSON and reports go; ``None`` means ``runs/<id>/eval/`` for a run and
        ``eval/<model folder name>/`` for a plain model.
    device
        ``cpu``, ``cuda``...; ``None`` picks CUDA when available.
    save
        Write the JSON, reports and manifest entry; ``False`` only returns the result.

    Raises
    ------
    HeldOutError
        Rows of the split were in the run's (or a baseline run's) train split.
    ConfigError
        No dataset given for a plain model, or the split is empty.
    """
    config = config or EvaluateConfig()
    store = Store(store_root)
    runs_root = Path(runs_root)
    notes: list[str] = []
    target_ref = resolve_target(target, runs_root=runs_root)
    dataset = _resolve_dataset(store, config, target_ref)
    kind = store.kind(dataset)
    frame = store.kept(dataset, split=config.split)
    if config.max_examples:
        frame = frame.head(config.max_examples)
    if frame.height == 0:
        raise ConfigError(f"Dataset {dataset} has no rows in split {config.split!r}; nothing to evaluate.")
    ids = frame.get_column("id").to_list()
    base_ref = _baseline_ref(config, target_ref, runs_root, notes)
    for ref in (target_ref, base_ref):
        if ref is not None and ref.trained_on:
            check_held_out(store, trained_on=ref.trained_on, run=ref.name, eval_ref=dataset, split=config.split, eval_ids=ids)
    if target_ref.trained_on is None:
        notes.append(f"{target_ref.name} is not a curate run, so rows could not be checked against its training data.")

    log.info("evaluating %s on %s split %s (%d rows)", target_ref.name, dataset, config.split, frame.height)
    model = load_model(target_ref, device=device)
    base = load_model(base_ref, device=device) if base_ref is not None else None
    result = EvalResult(
        model=target_ref.name,
        dataset=dataset,
        split=config.split,
        kind=kind,
        n_examples=frame.height,
        baseline=base_ref.name if base_ref else None,
        run=str(target_ref.run_dir) if target_ref.run_dir else None,
        config=config.model_dump(mode="json"),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        notes=notes,
    )
    rows = frame.to_dicts()
    ctx = _Ctx(config=config, n=len(rows))
    if kind == "sft":
        labels = [v for v in store.kept(dataset).get_column("label").unique().to_list() if v]  # every split's labels
        _eval_sft(result, rows, model=model, base=base, ctx=ctx, runs_root=runs_root, device=device, labels=labels)
    elif kind == "preference":
        _eval_preference(result, rows, model=model, base=base, ctx=ctx, device=device)
    else:
        _eval_prompts(result, rows, model=model, base=base, ctx=ctx, runs_root=runs_root, device=device)
    if config.forgetting is not None:
        _eval_forgetting(result, model=model, base=base, ctx=ctx, runs_root=runs_root, device=device)
    if save:
        _save(result, target_ref, out_dir=out_dir, worst=config.worst_examples)
    return result


def evaluate_after_training(
    run_dir: str | Path,
    *,
    recipe_config: EvaluateConfig | None,
    pipeline_config: EvaluateConfig | None = None,
    store_root: str | Path = "datasets",
    device: str | None = None,
) -> EvalResult | None:
    """The hook ``curate train`` / ``curate run`` call when a run finishes: evaluate it if a block asks.

    Parameters
    ----------
    run_dir
        The finished run folder.
    recipe_config
        The recipe's ``evaluate:`` block.
    pipeline_config
        The pipeline's top-level ``evaluate:`` block; it wins over the recipe's.
    store_root, device
        As for :func:`eval_run`.

    Returns
    -------
    EvalResult or None
        ``None`` when neither block is set.
    """
    config = pipeline_config or recipe_config
    if config is None:
        return None
    run_dir = Path(run_dir)
    return eval_run(run_dir, config=config, store_root=store_root, runs_root=run_dir.parent, device=device)


# -- sft --------------------------------------------------------------------------------


def _eval_sft(
    result: EvalResult,
    rows: list[dict[str, Any]],
    *,
    model: LoadedModel,
    base: LoadedModel | None,
    ctx: _Ctx,
    runs_root: Path,
    device: str | None,
    labels: list[str],
) -> None:
    from .generation import generate_answers
    from .metrics import score_texts
    from .perplexity import TokenLoss, assistant_token_loss

    cfg = ctx.config
    wanted = cfg.metrics
    examples = [{"id": r["id"]} for r in rows]
    split_rows = [prompt_and_answer(r["messages"], system_prompt=cfg.system_prompt) for r in rows]
    prompts = [p for p, _ in split_rows]
    references = [a for _, a in split_rows]
    for ex, p, ref, r in zip(examples, prompts, references, rows, strict=True):
        ex["prompt"] = _show_prompt(p)
        ex["reference"] = ref
        if r.get("label"):
            ex["label"] = r["label"]
    causal = model.ref.role == "causal_lm"
    base_causal = base is not None and base.ref.role == "causal_lm"
    for name in ("preference_accuracy", "dpo_margin"):
        if name in wanted:
            result.notes.append(f"`{name}` needs preference data; {result.dataset} holds sft rows, so it was skipped.")

    if "loss" in wanted:
        if not causal:
            result.notes.append(f"`loss` needs a causal LM; {model.ref.name} is a {model.ref.role}, so it was skipped.")
        else:
            convs = [r["messages"] for r in rows]
            lm = assistant_token_loss(*model.pair, convs, batch_size=cfg.batch_size, max_length=cfg.max_length)
            lb = assistant_token_loss(*base.pair, convs, batch_size=cfg.batch_size, max_length=cfg.max_length) if base_causal else None

            def loss_stat(tl: TokenLoss, *, ppl: bool) -> IndexStat:
                nll, tok = np.asarray(tl.nll), np.asarray(tl.tokens, dtype=float)

                def stat(i: np.ndarray) -> float:
                    value = float(nll[i].sum() / max(tok[i].sum(), 1.0))
                    return math.exp(value) if ppl else value

                return stat

            for name, ppl in (("loss", False), ("perplexity", True)):
                result.metrics.append(
                    ctx.headline(name, loss_stat(lm, ppl=ppl), loss_stat(lb, ppl=ppl) if lb else None)
                )
            for ex, v in zip(examples, lm.per_example_loss(), strict=True):
                ex["loss"] = v
            if lb is not None:
                for ex, v in zip(examples, lb.per_example_loss(), strict=True):
                    ex["baseline_loss"] = v

    text_metrics = [m for m in wanted if m in GENERATION_METRICS]
    label_wanted = "label_accuracy" in wanted
    has_labels = all(r.get("label") for r in rows)
    if label_wanted and not has_labels:
        result.notes.append(f"`label_accuracy` needs a `label` on every row of {result.dataset}; it was skipped.")
        label_wanted = False
    need_answers = bool(text_metrics) or "win_rate" in wanted or (label_wanted and causal)
    answers: list[str] | None = None
    base_answers: list[str] | None = None
    if need_answers and causal:
        answers = generate_answers(*model.pair, prompts, config=cfg.generation)
        if base_causal:
            base_answers = generate_answers(*base.pair, prompts, config=cfg.generation)
        for i, ex in enumerate(examples):
            ex["prediction"] = answers[i]
            if base_answers is not None:
                ex["baseline_prediction"] = base_answers[i]
    elif need_answers:
        result.notes.append(f"Generation metrics need a causal LM; {model.ref.name} is a {model.ref.role}.")

    if answers is not None and text_metrics:
        scores = score_texts(answers, references, metrics=text_metrics)
        base_scores = score_texts(base_answers, references, metrics=text_metrics) if base_answers is not None else None
        for name in text_metrics:
            result.metrics.append(
                ctx.headline(name, _mean_stat(scores[name]), _mean_stat(base_scores[name]) if base_scores else None)
            )
            for ex, v in zip(examples, scores[name], strict=True):
                ex[name] = v
        if "bleu" in text_metrics:
            from .metrics import corpus_bleu

            result.details["corpus_bleu"] = corpus_bleu(answers, references)

    if label_wanted:
        true = [r["label"] for r in rows]
        label_set = sorted(set(true) | set(labels))
        predicted = _predict_labels(model, answers, rows, label_set, cfg.batch_size)
        base_predicted = (
            _predict_labels(base, base_answers, rows, label_set, cfg.batch_size)
            if base is not None and (base.ref.role == "classifier" or base_answers is not None)
            else None
        )
        if predicted is not None:
            _label_metrics(result, ctx, true, predicted, base_predicted)
            for ex, p in zip(examples, predicted, strict=True):
                ex["predicted_label"] = p if p is not None else "(none)"
                ex["label_correct"] = float(p == ex.get("label"))

    if "win_rate" in wanted and answers is not None and base_answers is not None:
        _win_rate(result, ctx, prompts, answers, base_answers, runs_root=runs_root, device=device)
    elif "win_rate" in wanted:
        result.notes.append("`win_rate` needs answers from both the model and a causal-LM baseline; it was skipped.")

    result.examples = examples
    result.worst_by = next(
        (m for m in ("token_f1", "rouge_l", "chrf", "exact_match", "label_correct", "loss") if m in examples[0]), None
    )


def _predict_labels(
    loaded: LoadedModel, answers: list[str] | None, rows: list[dict[str, Any]], label_set: list[str], batch_size: int
) -> list[str | None] | None:
    if loaded.ref.role == "classifier":
        texts = [_user_text(plain_messages(r["messages"])) for r in rows]
        return list(_head_predict(loaded, texts, batch_size=batch_size))
    if answers is None:
        return None
    return [match_label(a, label_set) for a in answers]


def _label_metrics(
    result: EvalResult, ctx: _Ctx, true: list[str], predicted: list[str | None], base_predicted: list[str | None] | None
) -> None:
    from .classification import macro_f1

    t = np.asarray(true, dtype=object)

    def acc(pred: list[str | None]) -> IndexStat:
        correct = np.asarray([p == y for p, y in zip(pred, true, strict=True)], dtype=float)
        return lambda i: float(correct[i].mean())

    def f1(pred: list[str | None]) -> IndexStat:
        p = np.asarray(pred, dtype=object)
        return lambda i: macro_f1(list(p[i]), list(t[i]))

    result.metrics.append(ctx.headline("label_accuracy", acc(predicted), acc(base_predicted) if base_predicted else None))
    result.metrics.append(ctx.headline("label_macro_f1", f1(predicted), f1(base_predicted) if base_predicted else None))
    result.details["confusion_matrix"] = confusion_matrix(predicted, true).to_dict()
    if base_predicted is not None:
        result.details["baseline_confusion_matrix"] = confusion_matrix(base_predicted, true).to_dict()


def _show_prompt(prompt: list[dict[str, Any]]) -> str:
    if len(prompt) == 1:
        return prompt[0]["content"]
    return "\n".join(f"[{m['role']}] {m['content']}" for m in prompt)


# -- judges -----------------------------------------------------------------------------


def _load_judge(ctx: _Ctx, *, runs_root: Path, device: str | None) -> Any:
    from .judges import load_judge

    j = ctx.config.judge
    assert j is not None  # guaranteed by EvaluateConfig's validator when win_rate is asked for
    return load_judge(j, runs_root=runs_root, device=device, batch_size=ctx.config.batch_size)


def _win_rate(
    result: EvalResult,
    ctx: _Ctx,
    prompts: list[Any],
    answers: list[str],
    base_answers: list[str],
    *,
    runs_root: Path,
    device: str | None,
) -> None:
    from .winrate import pairwise_win_rate

    judge = _load_judge(ctx, runs_root=runs_root, device=device)
    b = ctx.config.bootstrap
    wr = pairwise_win_rate(
        prompts, answers, base_answers, judge, swap=ctx.config.judge.swap,  # type: ignore[union-attr]
        resamples=b.resamples, confidence=b.confidence, seed=b.seed,
    )  # fmt: skip
    result.metrics.append(MetricResult.of("win_rate", wr.interval))
    result.details["win_rate"] = wr.to_dict()
    if getattr(judge, "unparsed", 0):
        result.notes.append(f"The LLM judge gave no [[A]]/[[B]]/[[C]] verdict {judge.unparsed} times; those count as ties.")
    if result.examples:
        for ex, s in zip(result.examples, wr.scores, strict=False):
            ex["win"] = s


# -- preference -------------------------------------------------------------------------


def _eval_preference(
    result: EvalResult,
    rows: list[dict[str, Any]],
    *,
    model: LoadedModel,
    base: LoadedModel | None,
    ctx: _Ctx,
    device: str | None,
) -> None:
    from .preference import dpo_reward_margins, preference_correct, reward_scores

    cfg = ctx.config
    examples: list[dict[str, Any]] = [
        {
            "id": r["id"],
            "prompt": _show_prompt(plain_messages(r["prompt"])),
            "chosen": "\n".join(m["content"] for m in plain_messages(r["chosen"])),
            "rejected": "\n".join(m["content"] for m in plain_messages(r["rejected"])),
        }
        for r in rows
    ]
    skipped = [m for m in cfg.metrics if m not in ("preference_accuracy", "dpo_margin")]
    if skipped:
        result.notes.append(f"{', '.join(skipped)}: not computed on preference data (use an sft version).")

    def scores_of(loaded: LoadedModel) -> tuple[list[float], list[float]]:
        chosen = [plain_messages(r["prompt"]) + plain_messages(r["chosen"]) for r in rows]
        rejected = [plain_messages(r["prompt"]) + plain_messages(r["rejected"]) for r in rows]
        return (
            reward_scores(*loaded.pair, chosen, batch_size=cfg.batch_size),
            reward_scores(*loaded.pair, rejected, batch_size=cfg.batch_size),
        )

    margins: list[float] | None = None
    reference = base if base is not None and base.ref.role == "causal_lm" else None
    if model.ref.role == "causal_lm" and reference is None and ("dpo_margin" in cfg.metrics or "preference_accuracy" in cfg.metrics):
        result.notes.append(
            "DPO implicit rewards need the reference model (the run's base); set `baseline: base`. Skipped."
        )
    if model.ref.role == "causal_lm" and reference is not None:
        beta = _recipe_beta(model.ref)
        margins = dpo_reward_margins(
            model.model, reference.model, model.tokenizer, rows, beta=beta, batch_size=cfg.batch_size, max_length=cfg.max_length
        )
        result.details["dpo_beta"] = beta
        for ex, m in zip(examples, margins, strict=True):
            ex["margin"] = m

    if "preference_accuracy" in cfg.metrics:
        if model.ref.role == "reward":
            c, r = scores_of(model)
            correct = preference_correct(c, r)
            base_correct = None
            if base is not None and base.ref.role == "reward":
                bc, br = scores_of(base)
                base_correct = preference_correct(bc, br)
            result.metrics.append(
                ctx.headline("preference_accuracy", _mean_stat(correct), _mean_stat(base_correct) if base_correct else None)
            )
            for ex, a, b, ok in zip(examples, c, r, correct, strict=True):
                ex.update(reward_chosen=a, reward_rejected=b, margin=a - b, correct=ok)
        elif margins is not None:
            correct = preference_correct(margins, [0.0] * len(margins))
            result.metrics.append(ctx.headline("preference_accuracy", _mean_stat(correct)))
            result.notes.append("preference_accuracy of a causal LM is the share of pairs with a positive DPO implicit reward margin.")
            for ex, ok in zip(examples, correct, strict=True):
                ex["correct"] = ok
        else:
            result.notes.append(f"`preference_accuracy` needs a reward model or a DPO run; {model.ref.name} is neither.")
    if "dpo_margin" in cfg.metrics and margins is not None:
        result.metrics.append(ctx.headline("dpo_margin", _mean_stat(margins)))
    result.examples = examples
    result.worst_by = "margin" if examples and "margin" in examples[0] else None


# -- prompt-only rows -------------------------------------------------------------------


def _eval_prompts(
    result: EvalResult,
    rows: list[dict[str, Any]],
    *,
    model: LoadedModel,
    base: LoadedModel | None,
    ctx: _Ctx,
    runs_root: Path,
    device: str | None,
) -> None:
    from .generation import generate_answers

    column = "prompt"
    prompts = [plain_messages(r[column]) for r in rows]
    skipped = [m for m in ctx.config.metrics if m != "win_rate"]
    if skipped:
        result.notes.append(f"{', '.join(skipped)}: {result.kind} rows have no reference answers; only win_rate applies.")
    examples = [{"id": r["id"], "prompt": _show_prompt(p)} for r, p in zip(rows, prompts, strict=True)]
    result.examples = examples
    if "win_rate" in ctx.config.metrics and base is not None and model.ref.role == base.ref.role == "causal_lm":
        answers = generate_answers(*model.pair, prompts, config=ctx.config.generation)
        base_answers = generate_answers(*base.pair, prompts, config=ctx.config.generation)
        for ex, a, b in zip(examples, answers, base_answers, strict=True):
            ex.update(prediction=a, baseline_prediction=b)
        _win_rate(result, ctx, prompts, answers, base_answers, runs_root=runs_root, device=device)
        result.worst_by = "win"


# -- forgetting -------------------------------------------------------------------------


def _eval_forgetting(
    result: EvalResult, *, model: LoadedModel, base: LoadedModel | None, ctx: _Ctx, runs_root: Path, device: str | None
) -> None:
    from .forgetting import forgetting_check, load_regression_set

    fc = ctx.config.forgetting
    assert fc is not None
    if model.ref.role != "causal_lm":
        result.notes.append("The forgetting check needs a causal LM; skipped.")
        return
    reference = base
    if reference is None or reference.ref.role != "causal_lm" or not result.baseline or not result.baseline.startswith("base"):
        if model.ref.base_model is None:
            result.notes.append("The forgetting check compares with the base model, which is unknown here; skipped.")
            return
        reference = load_model(ModelRef(name="base", path=_as_path(model.ref.base_model), role="causal_lm"), device=device)
    prompts = load_regression_set(fc.questions, max_questions=fc.max_questions)
    judge = _load_judge(ctx, runs_root=runs_root, device=device) if ctx.config.judge is not None else None
    fr = forgetting_check(
        model.pair, reference.pair, prompts, tolerance=fc.tolerance, judge=judge, generation=ctx.config.generation,
        bootstrap=ctx.config.bootstrap, batch_size=ctx.config.batch_size, max_length=ctx.config.max_length,
    )  # fmt: skip
    result.details["forgetting"] = fr.to_dict()
    result.details["forgetting_examples"] = fr.examples[:20]
    if fr.regressed:
        result.notes.append(
            f"Forgetting: the tuned model regressed on the general prompts beyond the tolerance {fc.tolerance}."
        )


# -- saving -----------------------------------------------------------------------------


def _save(result: EvalResult, target: ModelRef, *, out_dir: str | Path | None, worst: int) -> None:
    from .report import write_report

    if out_dir is None:
        out_dir = target.run_dir / "eval" if target.run_dir else Path("eval") / Path(str(target.path)).name
    stem = output_stem(result.dataset, result.split)
    path = result.save(Path(out_dir) / f"{stem}.json")
    write_report(result, out_dir, stem=stem, worst=worst)
    log.info("wrote %s", path)
    if target.run_dir is not None:
        from curate.train.registry import record_evaluation

        summary = result.summary()
        summary["dataset"] = stem
        summary["result"] = str(path)
        try:
            record_evaluation(target.run_dir, summary)
        except CurateError as exc:  # the result files are written; a manifest problem must say so, not hide them
            raise CurateError(f"Evaluation written to {path}, but the run's manifest could not be updated: {exc}") from exc
