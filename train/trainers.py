"""Recipe -> TRL config and trainer, one small function per method. No trainer is re-implemented.

Every TRL config gets the same shared arguments (:func:`shared_args`): the recipe's
optimisation and checkpoint settings plus the device-aware precision defaults. Online RL
(ppo, grpo, rloo) lives in :mod:`curate.train.online`; the classification head in
:mod:`curate.train.head`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .data import MethodData
from .defaults import Device, default_beta, default_learning_rate
from .models import load_model, peft_config
from .recipe import Recipe

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, Trainer

__all__ = ["TRAIN_SAMPLE", "build_trainer", "shared_args", "total_steps"]

TRAIN_SAMPLE = 32  # rows of the train split whose loss is measured before and after training


def total_steps(recipe: Recipe, *, rows: int, devices: int = 1) -> int:
    """Optimizer steps the run will take (AdaLoRA's rank schedule needs it up front).

    One step takes ``batch_size x gradient_accumulation x devices`` rows (the global batch);
    ``devices`` is the number of processes training together under ``accelerate launch``.
    """
    t = recipe.training
    if t.max_steps:
        return t.max_steps
    batches = math.ceil(rows / (t.batch_size * devices))
    return max(1, math.ceil(batches / t.gradient_accumulation * t.epochs))


def shared_args(recipe: Recipe, *, device: Device, run_dir: Path, has_validation: bool) -> dict[str, Any]:
    """Keyword arguments every TRL ``*Config`` takes, from the recipe and the device."""
    t = recipe.training
    eval_strategy = t.eval_strategy if has_validation else "no"
    best = eval_strategy != "no" and (t.load_best_at_end or t.early_stopping_patience is not None)
    return {
        "output_dir": str(run_dir / "checkpoints"),
        "learning_rate": default_learning_rate(recipe),
        "num_train_epochs": t.epochs,
        "max_steps": t.max_steps or -1,
        "per_device_train_batch_size": t.batch_size,
        "per_device_eval_batch_size": t.batch_size,
        "gradient_accumulation_steps": t.gradient_accumulation,
        "warmup_steps": t.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps (transformers 5)
        "lr_scheduler_type": t.scheduler,
        "weight_decay": t.weight_decay,
        "max_grad_norm": t.max_grad_norm,
        **({"optim": t.optim} if t.optim else {}),  # None keeps transformers' default
        "logging_steps": t.logging_steps,
        "eval_strategy": eval_strategy,
        "eval_steps": t.eval_steps,
        "save_strategy": t.save_strategy,
        "save_steps": t.save_steps,
        "save_total_limit": t.save_total_limit,
        "load_best_model_at_end": best,
        "metric_for_best_model": "eval_validation_loss" if best else None,
        "greater_is_better": False if best else None,
        "report_to": recipe.report_to,
        "seed": recipe.seed,
        "data_seed": recipe.seed,
        "bf16": device.bf16,
        "use_cpu": device.use_cpu,
        "activation_checkpointing": device.activation_checkpointing,
        "dataloader_pin_memory": device.kind == "cuda",
    }


def _callbacks(recipe: Recipe, *, has_validation: bool) -> list[Any]:
    from transformers import EarlyStoppingCallback, TrainerCallback

    callbacks: list[Any] = []
    if recipe.training.early_stopping_patience is not None and has_validation:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=recipe.training.early_stopping_patience))
    if recipe.adapter == "adalora":

        class AdaLoraRanks(TrainerCallback):
            """AdaLoRA re-allocates ranks from gradient importance after every optimizer step."""

            def on_optimizer_step(self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
                model.base_model.update_and_allocate(state.global_step)

        callbacks.append(AdaLoraRanks())
    return callbacks


def _ref_model(recipe: Recipe, *, device: Device, tokenizer: PreTrainedTokenizerBase) -> PreTrainedModel | None:
    """A frozen reference for full fine-tuning; adapters use the base with the adapter disabled."""
    if recipe.adapter != "full":
        return None
    return load_model(recipe, device=device, tokenizer=tokenizer)


def build_trainer(
    recipe: Recipe,
    *,
    data: MethodData,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    device: Device,
    run_dir: Path,
    callbacks: list[Any] | None = None,
    devices: int = 1,
) -> Trainer:
    """The TRL trainer for an offline method (sft, pretrain, reward, dpo, kto), ready to ``train()``.

    Parameters
    ----------
    model
        The base model as :func:`curate.train.models.load_model` returns it (a sequence
        classifier for ``reward``); PEFT wraps it inside the trainer.
    callbacks
        Extra ``transformers`` callbacks (tests use one to interrupt a run).
    devices
        Processes training together (``accelerate launch``); the step count follows the global batch.
    """
    import trl

    has_val = data.validation is not None
    args = shared_args(recipe, device=device, run_dir=run_dir, has_validation=has_val)
    steps = total_steps(recipe, rows=len(data.train), devices=devices)
    task = "SEQ_CLS" if recipe.method == "reward" else "CAUSAL_LM"
    # a fixed slice of the train split is evaluated too: the loss on training data before / after
    evals = {"train_sample": data.train.select(range(min(TRAIN_SAMPLE, len(data.train))))}
    if has_val:
        evals["validation"] = data.validation
    common = {
        "model": model,
        "processing_class": tokenizer,
        "train_dataset": data.train,
        "eval_dataset": evals,
        "peft_config": peft_config(recipe, task_type=task, total_steps=steps),
        "callbacks": _callbacks(recipe, has_validation=has_val) + list(callbacks or []),
    }
    t, m = recipe.training, recipe.method
    if m in ("sft", "pretrain"):
        config = trl.SFTConfig(
            **args,
            max_length=t.max_length,
            packing=t.packing,
            assistant_only_loss=t.assistant_only_loss and m == "sft",
            dataset_num_proc=None,
        )
        return trl.SFTTrainer(args=config, **common)
    if m == "reward":
        return trl.RewardTrainer(args=trl.RewardConfig(**args, max_length=t.max_length), **common)
    if m == "dpo":
        config = trl.DPOConfig(**args, max_length=t.max_length, beta=default_beta(recipe), loss_type=recipe.rl.dpo_loss)
        return trl.DPOTrainer(args=config, ref_model=_ref_model(recipe, device=device, tokenizer=tokenizer), **common)
    if m == "kto":
        config = trl.KTOConfig(**args, max_length=t.max_length, beta=default_beta(recipe))
        return trl.KTOTrainer(args=config, ref_model=_ref_model(recipe, device=device, tokenizer=tokenizer), **common)
    raise ValueError(f"build_trainer does not handle method {m!r}")  # online methods go through curate.train.online
