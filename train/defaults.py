"""Defaults that depend on the method, the adapter or the device, resolved once per run.

The numbers are the usual starting points (TRL / PEFT docs and the QLoRA and DPO papers):
full fine-tuning 2e-5, LoRA-family adapters 2e-4, DPO 5e-7 (full) / 5e-6 (adapter), reward
and online RL 1e-5, a classification head on frozen features 1e-3.

Device: TRL configs default to bf16 and activation checkpointing. On CPU bf16 fails at
config time unless ``use_cpu=True``, and both make tiny models ~44% slower
(``notes/training-stack.md``), so on CPU we turn both off.
"""

from __future__ import annotations

from dataclasses import dataclass

from curate.errors import ConfigError

from .recipe import Recipe

__all__ = ["Device", "check_optimizer", "default_beta", "default_learning_rate", "detect_device"]

_FULL_LR = {"sft": 2e-5, "pretrain": 2e-5, "reward": 1e-5, "dpo": 5e-7, "kto": 5e-7, "ppo": 1e-5, "grpo": 1e-6, "rloo": 1e-6}
_ADAPTER_LR = {"sft": 2e-4, "pretrain": 2e-4, "reward": 1e-4, "dpo": 5e-6, "kto": 5e-6, "ppo": 1e-5, "grpo": 1e-5, "rloo": 1e-5}
_PROMPT_LEARNING_LR = 3e-3  # prefix / prompt tuning train few parameters and need a larger rate
_HEAD_LR = 1e-3
_BETA = {"dpo": 0.1, "kto": 0.1, "ppo": 0.05, "rloo": 0.05, "grpo": 0.0}


def default_learning_rate(recipe: Recipe) -> float:
    """The recipe's learning rate, or the default for its method and adapter."""
    if recipe.training.learning_rate is not None:
        return recipe.training.learning_rate
    if recipe.adapter == "head":
        return _HEAD_LR
    if recipe.adapter in ("prefix", "prompt"):
        return _PROMPT_LEARNING_LR
    table = _FULL_LR if recipe.adapter == "full" else _ADAPTER_LR
    return table[recipe.method]


def default_beta(recipe: Recipe) -> float | None:
    """The recipe's beta, or the method's default (None for methods without one)."""
    return recipe.rl.beta if recipe.rl.beta is not None else _BETA.get(recipe.method)


@dataclass(frozen=True)
class Device:
    """Where a run trains and the precision settings that follow from it."""

    kind: str  # "cuda" | "mps" | "cpu"
    bf16: bool
    activation_checkpointing: bool

    @property
    def use_cpu(self) -> bool:
        """True when training on CPU (transformers needs it spelled out for bf16 on CPU)."""
        return self.kind == "cpu"


def detect_device(recipe: Recipe) -> Device:
    """Device-aware precision defaults; explicit recipe values always win."""
    import torch

    if torch.cuda.is_available():
        kind, bf16_ok = "cuda", torch.cuda.is_bf16_supported()
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        kind, bf16_ok = "mps", False
    else:
        kind, bf16_ok = "cpu", False
    t = recipe.training
    return Device(
        kind=kind,
        bf16=t.bf16 if t.bf16 is not None else bf16_ok,
        activation_checkpointing=t.activation_checkpointing if t.activation_checkpointing is not None else kind == "cuda",
    )


def check_optimizer(recipe: Recipe, device: Device) -> None:
    """Refuse a paged optimizer off CUDA, before any data or model loads.

    bitsandbytes pages optimizer state through CUDA unified memory; elsewhere (0.50) it falls
    back to unpaged state with a warning, so a recipe that asked for paging would silently
    train without it.
    """
    optim = recipe.training.optim
    if optim and optim.startswith("paged_") and device.kind != "cuda":
        raise ConfigError(
            f"optim {optim} needs a CUDA GPU (bitsandbytes paged optimizers); on {device.kind.upper()} use adamw_torch "
            "(set training.optim in the recipe)."
        )
