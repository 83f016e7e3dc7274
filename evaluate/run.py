"""``curate eval``: score a run (or a model) on a dataset version's held-out split, against a baseline.

One call loads the target and its baseline once, builds an :class:`~.context.EvalContext` and
hands it to the evaluator of the version's record kind (:mod:`.sft_eval`, :mod:`.preference_eval`,
:mod:`.prompt_eval`; :mod:`.forgetting_eval` with a ``forgetting:`` block). Metrics carry paired
bootstrap intervals (the same resamples for model, baseline and their difference). The JSON and
Markdown/HTML reports go where :mod:`.output` says, and the headline numbers are recorded under
``evaluation`` in the run's manifest.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from curate.errors import ConfigError
from curate.store import Store

from .config import EvaluateConfig
from .context import EvalContext
from .forgetting_eval import as_model_path, eval_forgetting
from .heldout import check_held_out
from .models import ModelRef, load_model, resolve_target
from .output import eval_folder, output_stem, save_result
from .preference_eval import eval_preference
from .prompt_eval import eval_prompts
from .results import EvalResult
from .sft_eval import eval_sft

__all__ = ["eval_run", "evaluate_after_training", "output_stem"]

log = logging.getLogger(__name__)

_EVALUATORS = {"sft": eval_sft, "preference": eval_preference}  # any other kind: prompt rows


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
        return ModelRef(name=f"base ({target.base_model})", path=as_model_path(target.base_model), role="causal_lm")
    return resolve_target(config.baseline, runs_root=runs_root)


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
        ``eval/<model folder name>/`` for a plain model (:func:`~.output.eval_folder`).
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
    ctx = EvalContext(config=config, result=result, rows=frame.to_dicts(), model=model, base=base, store=store,
                      runs_root=runs_root, device=device)  # fmt: skip
    _EVALUATORS.get(kind, eval_prompts)(ctx)
    if config.forgetting is not None:
        eval_forgetting(ctx)
    if save:
        folder = eval_folder(run_dir=result.run, model=result.model, out_dir=out_dir)
        save_result(result, folder, worst=config.worst_examples, record=True)
    return result


def evaluate_after_training(
    run_dir: str | Path,
    *,
    recipe_config: EvaluateConfig | None,
    pipeline_config: EvaluateConfig | None = None,
    store_root: str | Path = "datasets",
    device: str | None = None,
) -> EvalResult | None:
    """Evaluate a finished run if an ``evaluate:`` block asks (:mod:`curate.orchestrate` calls it after training).

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
