"""``train``: a recipe plus a dataset version in, a run folder with a manifest out."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from curate.errors import ConfigError
from curate.extras import require_extra
from curate.runs import find_resumable, read_manifest, update_manifest
from curate.store import Store
from curate.yamlfile import load_yaml_model

from .data import prepare_data
from .defaults import check_optimizer, default_beta, default_learning_rate, detect_device
from .mix import mix_train, pin_mix
from .processes import Processes, current_processes
from .recipe import ONLINE_METHODS, MixSource, Recipe
from .registry import new_run_dir, package_versions, recipe_hash

__all__ = ["TrainResult", "load_recipe", "local_paths", "resolve_recipe", "resumable_run", "train"]

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What one training run produced."""

    run_id: str
    path: Path
    manifest: dict[str, Any]
    is_main: bool = True  # False on the other processes of an `accelerate launch`: they leave evaluation to the main one

    @property
    def metrics(self) -> dict[str, Any]:
        """The run's metrics (losses, steps, evaluation loss, runtime)."""
        return self.manifest.get("metrics", {})


def _local(value: str | None, base_dir: Path) -> str | None:
    """A relative path that exists next to the recipe file becomes absolute; anything else is kept (hub ids)."""
    if value and not Path(value).is_absolute() and (base_dir / value).exists():
        return str((base_dir / value).resolve())
    return value


def load_recipe(path: str | Path, *, model: str | None = None, dataset: str | None = None, output_dir: str | None = None) -> Recipe:
    """Load a recipe YAML; errors name the file, line and field.

    ``model``, ``dataset`` and ``output_dir`` (command-line values; ``None`` keeps the file's)
    replace the file's before validation, so a recipe may leave them out. Relative ``model`` /
    ``rl.reward_model`` paths written in the file resolve against its folder; a command-line
    ``model`` is taken as given (relative to the working directory).
    """
    path = Path(path)
    overrides = {"model": model, "dataset": dataset, "output_dir": output_dir}
    return local_paths(load_yaml_model(path, Recipe, overrides=overrides), path.parent, model=model)


def local_paths(recipe: Recipe, base_dir: Path, *, model: str | None = None) -> Recipe:
    """The recipe with its relative ``model`` / ``rl.reward_model`` paths resolved against ``base_dir``
    (the folder of the file it was written in); ``model``, when given (command line), is kept as is."""
    rl = recipe.rl.model_copy(update={"reward_model": _local(recipe.rl.reward_model, base_dir)})
    return recipe.model_copy(update={"model": model or _local(recipe.model, base_dir), "rl": rl})


def resolve_recipe(recipe: Recipe, *, dataset: str, mix: list[MixSource] | None = None) -> Recipe:
    """The recipe as it runs: dataset (and ``mix``, when given) pinned to ``name@N``, learning rate and beta filled in."""
    training = recipe.training.model_copy(update={"learning_rate": default_learning_rate(recipe)})
    rl = recipe.rl.model_copy(update={"beta": default_beta(recipe)})
    pinned = {"mix": [m.model_dump() for m in mix]} if mix is not None else {}
    return Recipe.model_validate({**recipe.model_dump(), "dataset": dataset, "training": training.model_dump(), "rl": rl.model_dump(), **pinned})


def resumable_run(recipe: Recipe, *, store: str | Path = "datasets") -> Path | None:
    """The unfinished run folder that ``train(recipe, store=store, resume=True)`` would continue, or ``None``.

    ``recipe`` names its ``dataset`` and ``output_dir``; the run is found as ``train`` finds it:
    by the hash of the resolved recipe (dataset pinned to ``name@N``), among runs not completed.
    """
    if not recipe.dataset:
        raise ConfigError("resumable_run needs a recipe with a `dataset` (name@N) to look up its unfinished run.")
    st = Store(store)
    name, version = st.resolve(recipe.dataset)
    resolved = resolve_recipe(recipe, dataset=f"{name}@{version}", mix=pin_mix(st, recipe.mix))
    return find_resumable(Path(resolved.output_dir), digest=recipe_hash(resolved))


def _metrics(history: list[dict[str, Any]], state: Any, runtime: float) -> dict[str, Any]:
    losses = [h["loss"] for h in history if "loss" in h]
    evals = [h["eval_validation_loss"] for h in history if "eval_validation_loss" in h]
    out: dict[str, Any] = {"global_step": state.global_step, "epoch": state.epoch, "runtime_s": round(runtime, 3)}
    if losses:
        out.update(train_loss_first=losses[0], train_loss_last=losses[-1], train_loss_history=losses)
    if evals:
        out.update(eval_loss=evals[-1], eval_loss_best=min(evals), eval_loss_history=evals)
    final = next((h for h in reversed(history) if "train_loss" in h), {})
    if "train_loss" in final:
        out["train_loss_mean"] = final["train_loss"]
    if state.best_model_checkpoint:
        out["best_checkpoint"] = Path(state.best_model_checkpoint).name
    for key in ("objective/scores", "objective/rlhf_reward", "reward", "rewards/chosen", "eval_accuracy"):
        values = [h[key] for h in history if key in h]
        if values:
            out[key.replace("/", "_")] = values[-1]
    return out


def train(
    recipe: Recipe | str | Path,
    *,
    dataset: str | None = None,
    model: str | None = None,
    output: str | Path | None = None,
    store: str | Path = "datasets",
    resume: bool = False,
    callbacks: list[Any] | None = None,
) -> TrainResult:
    """Train from a dataset version and write ``<output>/<run-id>/`` with the artefact and manifest.

    Parameters
    ----------
    recipe
        A :class:`Recipe` or the path of a recipe YAML.
    dataset
        Dataset reference ``name@N`` / ``name``; overrides the recipe's. Resolved to ``name@N``.
    model
        Base model folder or hub id; overrides the recipe's.
    output
        Folder holding run folders; overrides the recipe's ``output_dir`` (default ``runs``).
    store
        Dataset store root.
    resume
        Continue the newest unfinished run of the same resolved recipe from its last checkpoint.
    callbacks
        Extra ``transformers`` callbacks (e.g. a tracker hook; tests use one to interrupt a run).

    Raises
    ------
    ConfigError
        No dataset given, the version's kind does not fit the method, or nothing to resume.
    MissingExtraError
        The `train` extra is not installed (the message has the pip command).
    """
    require_extra("train", what="Training")
    updates = {k: v for k, v in {"dataset": dataset, "model": model, "output_dir": str(output) if output else None}.items() if v}
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe, **updates)
    elif updates:
        recipe = Recipe.model_validate({**recipe.model_dump(), **updates})
    if not recipe.dataset:
        raise ConfigError("No dataset to train on: set `dataset: name@N` in the recipe or pass --dataset name@N.")
    st = Store(store)
    name, version = st.resolve(recipe.dataset)
    ref, kind = f"{name}@{version}", st.kind(f"{name}@{version}")
    resolved = resolve_recipe(recipe, dataset=ref, mix=pin_mix(st, recipe.mix))
    device = detect_device(resolved)
    check_optimizer(resolved, device)
    if resume and resolved.method == "ppo":
        raise ConfigError("PPO (trl.experimental.ppo) cannot resume from a checkpoint; start a new run instead.")
    processes = current_processes(cpu=device.use_cpu)
    if processes.count > 1 and resolved.adapter == "head":
        raise ConfigError(
            f"adapter `head` trains in one process, but this is one of {processes.count} (accelerate launch); "
            "run `curate train` without accelerate launch."
        )
    digest = recipe_hash(resolved)
    method = "head" if resolved.adapter == "head" else resolved.method
    data = prepare_data(st.load(ref), method=method, kind=kind, ref=ref)  # fails before any model loads
    mix = None
    if resolved.mix:
        requested = [recipe.dataset, *(m.dataset for m in recipe.mix)]
        data, mix = mix_train(data, store=st, ref=ref, kind=kind, method=method, mix=resolved.mix, requested=requested,
                              size=resolved.mix_size, seed=resolved.seed)  # fmt: skip

    run_dir = _run_folder(Path(resolved.output_dir), recipe=resolved, digest=digest, resume=resume, processes=processes)
    if processes.is_main:
        rows = {"train": len(data.train), "validation": len(data.validation) if data.validation is not None else 0}
        dataset_info = {"ref": ref, "name": name, "version": version, "kind": kind, "requested": recipe.dataset,
                        "store": str(st.root.resolve()), "rows": rows}  # fmt: skip
        device_info = {"kind": device.kind, "bf16": device.bf16, "activation_checkpointing": device.activation_checkpointing,
                       "processes": processes.count}  # fmt: skip
        _start_manifest(run_dir, resolved, dataset=dataset_info, device=device_info, mix=mix, feedback=data.feedback, digest=digest)
    try:
        metrics = _run(resolved, data=data, device=device, run_dir=run_dir, resume=resume, callbacks=callbacks, processes=processes)
    except BaseException as exc:
        if processes.is_main:
            update_manifest(run_dir, status="failed", error=f"{type(exc).__name__}: {exc}")
        raise
    if processes.is_main:
        update_manifest(run_dir, status="completed", finished=datetime.now(UTC).isoformat(timespec="seconds"), metrics=metrics, error=None)
        log.info("run %s completed: %s", run_dir.name, metrics)
    processes.wait()  # every process returns the completed manifest
    return TrainResult(run_id=run_dir.name, path=run_dir, manifest=read_manifest(run_dir), is_main=processes.is_main)


def _run_folder(root: Path, *, recipe: Recipe, digest: str, resume: bool, processes: Processes) -> Path:
    """The run folder: the main process finds it (``--resume``) or creates it; every process gets its path."""
    found = None
    if processes.is_main:
        found = find_resumable(root, digest=digest) if resume else new_run_dir(root, recipe=recipe, digest=digest)
    found = processes.share(found)
    if found is None:
        raise ConfigError(f"Nothing to resume: no unfinished run of this recipe (hash {digest[:12]}) under {root}.")
    return found


def _start_manifest(run_dir: Path, resolved: Recipe, *, dataset: dict, device: dict, mix: Any, feedback: Any, digest: str) -> None:
    """Write ``recipe.yaml`` and the manifest of a run that starts (status ``running``)."""
    from .models import model_fingerprint

    (run_dir / "recipe.yaml").write_text(yaml.safe_dump(resolved.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
    update_manifest(
        run_dir,
        run_id=run_dir.name,
        status="running",
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        base_model=model_fingerprint(resolved.model, revision=resolved.revision),
        method=resolved.method,
        adapter=resolved.adapter,
        dataset=dataset,
        mix=mix,
        feedback=feedback,  # kto on feedback rows: rows used and skipped per reason; None otherwise
        recipe="recipe.yaml",
        recipe_hash=digest,
        versions=package_versions(),
        device=device,
        artefact="model",
        metrics={},
        evaluation=None,
    )


def _run(
    recipe: Recipe, *, data: Any, device: Any, run_dir: Path, resume: bool, callbacks: list[Any] | None, processes: Processes
) -> dict[str, Any]:
    """Load the model, build the trainer, train, save ``model/`` (main process); returns the metrics.

    Training and the trainer's evaluations are collective: every process runs them.
    """
    from transformers import set_seed

    set_seed(recipe.seed)  # new weights (score / value heads, adapters) start from the recipe's seed
    if recipe.adapter == "head":
        from .head import train_head

        return train_head(recipe, data=data, device=device, run_dir=run_dir)
    from .models import load_model, load_tokenizer

    tokenizer = load_tokenizer(recipe)
    model = load_model(recipe, device=device, tokenizer=tokenizer, num_labels=1 if recipe.method == "reward" else None,
                       gpu=processes.local_index)  # fmt: skip
    if recipe.method in ONLINE_METHODS:
        from .online import build_online_trainer as build
    else:
        from .trainers import build_trainer as build
    trainer = build(recipe, data=data, model=model, tokenizer=tokenizer, device=device, run_dir=run_dir, callbacks=callbacks,
                    devices=processes.count)  # fmt: skip
    has_checkpoint = processes.share(resume and any((run_dir / "checkpoints").glob("checkpoint-*")))
    offline = recipe.method not in ONLINE_METHODS
    before = _LossBefore(trainer) if offline and not has_checkpoint else None
    if before is not None:
        trainer.add_callback(before.callback)
    started = time.perf_counter()
    if recipe.method == "ppo":
        trainer.train()
    else:
        trainer.train(resume_from_checkpoint=True if has_checkpoint else None)
    runtime = time.perf_counter() - started - (before.seconds if before else 0.0)
    if recipe.adapter == "bottleneck":  # the adapters only, not the frozen base
        from .bottleneck import save_bottleneck

        if processes.is_main:
            save_bottleneck(trainer.model, run_dir / "model", base_model=recipe.model)
    else:
        trainer.save_model(str(run_dir / "model"))  # every process (ZeRO-3 / FSDP gather); the main one writes
    if processes.is_main:
        tokenizer.save_pretrained(str(run_dir / "model"))
    processes.wait()
    metrics = _metrics(trainer.state.log_history, trainer.state, runtime)
    if offline:
        metrics.update(train_sample_loss_before=before.loss if before else None, train_sample_loss_after=_train_sample_loss(trainer))
    return metrics


class _LossBefore:
    """Measures the train-sample loss when training begins, after the trainer has wrapped the model.

    Evaluating before ``train()`` would let accelerate mark the bare model as prepared, and
    ``train()`` would then leave out the DDP wrapper: under ``accelerate launch`` each process
    would train its own copy, never averaging gradients (transformers 5.24, accelerate 1.15).
    """

    def __init__(self, trainer: Any) -> None:
        from transformers import TrainerCallback

        self.loss: float | None = None
        self.seconds = 0.0
        outer = self

        class Callback(TrainerCallback):
            def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                started = time.perf_counter()
                outer.loss = _train_sample_loss(trainer)
                if state.log_history and "eval_train_sample_loss" in state.log_history[-1]:
                    state.log_history.pop()  # a measurement, not a step of the run's log
                outer.seconds = time.perf_counter() - started

        self.callback = Callback()


def _train_sample_loss(trainer: Any) -> float | None:
    """Loss on the fixed train slice (see ``TRAIN_SAMPLE``), in eval mode; None when the trainer
    dropped every row of it (e.g. RewardTrainer drops pairs longer than ``max_length``)."""
    return trainer.evaluate(eval_dataset="train_sample", metric_key_prefix="eval_train_sample").get("eval_train_sample_loss")
