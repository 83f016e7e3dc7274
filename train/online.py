"""Online RL from a version's prompts and a reward model: ppo, grpo, rloo.

PPO is served by ``trl.experimental.ppo`` of trl 1.12, the last TRL release that ships it
(trl 1.13 deleted it); curate pins ``trl>=1.12,<1.13`` for that reason (docs/training.md).
GRPO and RLOO are TRL's stable online trainers.

The reward model is a ``reward`` run folder (its ``model/``; a LoRA reward run is merged in
memory) or any sequence-classification checkpoint with one output. PPO also initialises its
value model from it, and needs it to share the policy's tokenizer (rollouts are scored as
token ids); GRPO / RLOO re-tokenize completions with the reward model's own tokenizer.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from curate.errors import ConfigError
from curate.runs import MANIFEST, read_manifest

from .data import MethodData
from .defaults import Device, default_beta
from .models import peft_config
from .trainers import shared_args

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, Trainer

    from .recipe import Recipe

__all__ = ["build_online_trainer", "load_reward_model"]


def load_reward_model(source: str, *, device: Device) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A one-output sequence classifier and its tokenizer from a reward run or a checkpoint."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = Path(source)
    dtype = torch.float32 if device.kind == "cpu" else "auto"
    if (path / MANIFEST).is_file():
        manifest = read_manifest(path)
        if manifest.get("method") != "reward":
            raise ConfigError(f"rl.reward_model {source} is a {manifest.get('method')!r} run; it must be a `reward` run.")
        path = path / "model"
    if (path / "adapter_config.json").is_file():
        from peft import AutoPeftModelForSequenceClassification

        model = AutoPeftModelForSequenceClassification.from_pretrained(path, num_labels=1, dtype=dtype).merge_and_unload()
    else:
        model = AutoModelForSequenceClassification.from_pretrained(str(path), num_labels=1, dtype=dtype)
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
    return model.eval(), tokenizer


def _tokenized_prompts(data: Any, tokenizer: PreTrainedTokenizerBase, *, max_length: int) -> Any:
    """PPO wants pre-tokenized prompts: the chat template with the generation prompt, as ``input_ids``."""

    def encode(row: dict[str, Any]) -> dict[str, Any]:
        ids = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=True, return_dict=False)
        return {"input_ids": ids[-max_length:]}

    return data.map(encode, remove_columns=data.column_names)


def _ppo(recipe: Recipe, args: dict[str, Any], **kw: Any) -> Trainer:
    import copy

    try:
        from trl.experimental.ppo import PPOConfig, PPOTrainer
    except ImportError as exc:
        raise ConfigError(
            "method `ppo` needs trl 1.12 (trl 1.13 deleted PPO): pip install 'trl>=1.12,<1.13', "
            "or use method grpo / rloo."
        ) from exc

    model, tokenizer, device = kw["model"], kw["tokenizer"], kw["device"]
    reward, reward_tokenizer = load_reward_model(recipe.rl.reward_model or "", device=device)
    if reward_tokenizer.get_vocab() != tokenizer.get_vocab():
        raise ConfigError(
            f"PPO scores rollouts as token ids, so rl.reward_model {recipe.rl.reward_model} must use the policy's "
            f"tokenizer ({recipe.model}); train the reward model from the same base, or use method grpo / rloo."
        )
    for key in ("load_best_model_at_end", "metric_for_best_model", "greater_is_better", "eval_steps"):
        args.pop(key)
    config = PPOConfig(
        **{**args, "eval_strategy": "no"},
        num_ppo_epochs=recipe.rl.ppo_epochs,
        response_length=recipe.rl.max_completion_length,
        temperature=recipe.rl.temperature,
        kl_coef=default_beta(recipe),
        stop_token="eos",
        num_sample_generations=0,
        total_episodes=(recipe.training.max_steps * recipe.training.batch_size * recipe.training.gradient_accumulation * kw["devices"])
        if recipe.training.max_steps
        else None,
    )
    return PPOTrainer(
        args=config,
        processing_class=tokenizer,
        model=model,
        ref_model=None if kw["peft"] is not None else copy.deepcopy(model).eval(),
        reward_model=reward,
        value_model=copy.deepcopy(reward),
        train_dataset=_tokenized_prompts(kw["data"].train, tokenizer, max_length=recipe.training.max_length),
        peft_config=kw["peft"],
        callbacks=kw["callbacks"],
    )


def build_online_trainer(
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
    """The trainer of an online method (ppo, grpo, rloo), ready to ``train()``.

    ``devices`` is the number of processes training together (``accelerate launch``): PPO counts
    its length in episodes, and one optimizer step takes ``batch_size x accumulation x devices``.
    """
    import trl

    args = shared_args(recipe, device=device, run_dir=run_dir, has_validation=False)
    lora = peft_config(recipe, task_type="CAUSAL_LM")
    if recipe.method == "ppo":
        return _ppo(recipe, args, model=model, tokenizer=tokenizer, device=device, data=data, peft=lora, callbacks=callbacks, devices=devices)
    reward, reward_tokenizer = load_reward_model(recipe.rl.reward_model or "", device=device)
    rl = recipe.rl
    online = {
        "num_generations": rl.num_generations,
        "max_completion_length": rl.max_completion_length,
        "temperature": rl.temperature,
        "beta": default_beta(recipe),
    }
    common = {
        "model": model,
        "reward_funcs": reward,
        "reward_processing_classes": reward_tokenizer,
        "train_dataset": data.train,
        "processing_class": tokenizer,
        "peft_config": lora,
        "callbacks": callbacks,
    }
    if recipe.method == "grpo":
        return trl.GRPOTrainer(args=trl.GRPOConfig(**args, **online), **common)
    return trl.RLOOTrainer(args=trl.RLOOConfig(**args, **online), **common)
