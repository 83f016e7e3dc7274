"""The training recipe: the YAML a user writes, parsed into these models and nothing else.

.. code-block:: yaml

    model: models/tiny-llama          # local folder or hub id
    dataset: support@3                # a dataset version; `None` in a pipeline's `train:` block
    method: sft                       # sft | pretrain | reward | dpo | kto | ppo | grpo | rloo
    adapter: lora                     # full | lora | qlora | dora | ia3 | prefix | prompt | adalora | bottleneck | head
    lora: {r: 16, alpha: 32, target_modules: all-linear}
    training: {epochs: 3, batch_size: 8, early_stopping_patience: 2}

This module imports only pydantic, so ``curate.config`` can type the pipeline's ``train:``
block with :class:`Recipe` without importing torch. Every choice that the recipe alone can
decide is validated here, when the file is loaded (STYLE 4); defaults that depend on the
method, the adapter or the device are resolved later by :mod:`curate.train.defaults`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from curate.evaluate.config import EvaluateConfig

__all__ = [
    "ADAPTERS",
    "METHODS",
    "BOTTLENECK_METHODS",
    "PEFT_ADAPTERS",
    "Adapter",
    "BottleneckSettings",
    "LoraSettings",
    "Method",
    "MixSource",
    "QuantSettings",
    "Recipe",
    "RLSettings",
    "TrainingSettings",
]

Method = Literal["sft", "pretrain", "reward", "dpo", "kto", "ppo", "grpo", "rloo"]
Adapter = Literal["full", "lora", "qlora", "dora", "ia3", "prefix", "prompt", "adalora", "bottleneck", "head"]
METHODS: tuple[str, ...] = Method.__args__  # type: ignore[attr-defined]
ADAPTERS: tuple[str, ...] = Adapter.__args__  # type: ignore[attr-defined]
PEFT_ADAPTERS = ("lora", "qlora", "dora", "ia3", "prefix", "prompt", "adalora")
# Methods whose trainer runs generation (online RL); prompt-learning adapters do not fit them.
ONLINE_METHODS = ("ppo", "grpo", "rloo")
# Methods tested with bottleneck adapters (a reward head or an online trainer would need more wiring).
BOTTLENECK_METHODS = ("sft", "pretrain", "dpo", "kto")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoraSettings(_Section):
    """PEFT adapter hyper-parameters (used by lora, qlora, dora, adalora, ia3, prefix, prompt)."""

    r: int = Field(16, ge=1, description="LoRA rank (lora, qlora, dora; initial rank for adalora).")
    alpha: int = Field(32, ge=1, description="LoRA scaling alpha; the update is scaled by alpha / r.")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="Dropout on the LoRA input.")
    target_modules: Literal["all-linear"] | list[str] = Field(
        "all-linear",
        description="Modules that get an adapter: `all-linear` (every linear layer but the output head) "
        "or a list of module names such as `[q_proj, v_proj]`.",
    )
    num_virtual_tokens: int = Field(16, ge=1, description="Virtual tokens of prefix and prompt tuning.")


class BottleneckSettings(_Section):
    """Bottleneck adapters (adapter `bottleneck`): down-projection -> activation -> up-projection on a block's output."""

    reduction_factor: int = Field(
        8, ge=1, description="Adapter width = hidden size / reduction_factor (8 adds 2-3.5 % to 0.5B-8B models)."
    )
    size: int | None = Field(None, ge=1, description="Adapter width; `None` derives it from `reduction_factor`.")
    activation: Literal["relu", "gelu", "silu", "tanh"] = Field("silu", description="Non-linearity in between.")
    placement: Literal["houlsby", "pfeiffer"] = Field(
        "houlsby",
        description="`houlsby`: an adapter after the attention and after the feed-forward block of every layer; "
        "`pfeiffer`: after the feed-forward block only (half the parameters).",
    )
    attention_module: str = Field("self_attn", description="Attention block name inside a decoder layer (GPT-2: `attn`).")
    ffn_module: str = Field("mlp", description="Feed-forward block name inside a decoder layer.")


class QuantSettings(_Section):
    """bitsandbytes quantization of the frozen base (adapter `qlora`)."""

    bits: Literal[4, 8] = Field(4, description="4-bit (NF4/FP4) or 8-bit (LLM.int8) base weights.")
    quant_type: Literal["nf4", "fp4"] = Field("nf4", description="4-bit data type.")
    double_quant: bool = Field(True, description="Quantize the quantization constants too (4-bit only).")
    compute_dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Dtype of the 4-bit matmuls; `auto` is bfloat16 on a GPU that supports it, else float32."
    )


class TrainingSettings(_Section):
    """Optimisation, evaluation and checkpointing. `None` means the per-method / per-device default."""

    # -- optimisation
    learning_rate: float | None = Field(
        None,
        gt=0,
        description="Peak learning rate. `None`: 2e-5 for full fine-tuning, 2e-4 for LoRA-family adapters, "
        "5e-7 for full DPO/KTO (5e-6 with an adapter), 1e-5 for reward / online RL, 1e-3 for a head.",
    )
    epochs: float = Field(1.0, gt=0, description="Passes over the train split (ignored when `max_steps` is set).")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many optimizer steps; `None` runs `epochs`.")
    batch_size: int = Field(8, ge=1, description="Examples per device per forward pass.")
    gradient_accumulation: int = Field(
        1, ge=1, description="Forward passes per optimizer step; effective batch = batch_size x accumulation x devices."
    )
    warmup_ratio: float = Field(0.03, ge=0.0, lt=1.0, description="Fraction of the steps spent warming up the rate.")
    scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"] = Field(
        "cosine", description="Learning-rate schedule after warm-up."
    )
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.")
    optim: str | None = Field(
        None,
        description="Optimizer, by its transformers name (`TrainingArguments.optim`): e.g. `adamw_torch`, `adamw_8bit`, "
        "`sgd`, or for QLoRA on a CUDA GPU `paged_adamw_8bit` / `paged_adamw_32bit` (bitsandbytes pages the optimizer "
        "state to CPU memory under memory spikes). `None` is transformers' default (`adamw_torch_fused`).",
    )
    # -- data
    max_length: int = Field(1024, ge=8, description="Tokens per example (per packed row with `packing`); longer rows are truncated.")
    packing: bool = Field(False, description="Pack several examples into one row (sft / pretrain); padding-free BFD packing.")
    assistant_only_loss: bool = Field(
        True,
        description="SFT on conversations: train only on assistant tokens (needs `{% generation %}` markers in "
        "the chat template, which TRL adds for known templates). `False` trains on every token.",
    )
    # -- evaluation, checkpoints, early stopping
    eval_strategy: Literal["no", "steps", "epoch"] = Field(
        "epoch", description="When to compute the loss on the `validation` split (skipped when the version has none)."
    )
    eval_steps: int | None = Field(None, ge=1, description="Steps between evaluations with `eval_strategy: steps`.")
    save_strategy: Literal["no", "steps", "epoch"] = Field(
        "epoch", description="When to write a checkpoint (under `checkpoints/` of the run; `--resume` continues from it)."
    )
    save_steps: int | None = Field(None, ge=1, description="Steps between checkpoints with `save_strategy: steps`.")
    save_total_limit: int | None = Field(2, ge=1, description="Checkpoints kept (the best one is always kept); `None` keeps all.")
    early_stopping_patience: int | None = Field(
        None,
        ge=1,
        description="Stop after this many evaluations without a lower validation loss, and keep the best "
        "checkpoint. `None` disables early stopping.",
    )
    load_best_at_end: bool = Field(
        False, description="Reload the checkpoint with the lowest validation loss at the end (implied by early stopping)."
    )
    logging_steps: int = Field(10, ge=1, description="Steps between logged training losses.")
    # -- device
    bf16: bool | None = Field(None, description="bfloat16 mixed precision; `None`: on for GPUs that support it, off on CPU.")
    activation_checkpointing: bool | None = Field(
        None, description="Recompute activations in backward to save memory; `None`: on for GPU, off on CPU (it only slows CPU runs)."
    )

    @field_validator("optim")
    @classmethod
    def _known_optimizer(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from transformers.training_args import OptimizerNames  # imported only when a recipe names an optimizer

        known = [o.value for o in OptimizerNames]
        if value not in known:
            raise ValueError(f"unknown optimizer {value!r}; transformers knows {', '.join(known)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TrainingSettings:
        if self.eval_strategy == "steps" and self.eval_steps is None:
            raise ValueError("eval_strategy: steps needs eval_steps (steps between evaluations)")
        if self.save_strategy == "steps" and self.save_steps is None:
            raise ValueError("save_strategy: steps needs save_steps (steps between checkpoints)")
        if self.early_stopping_patience is not None or self.load_best_at_end:
            if self.eval_strategy == "no":
                raise ValueError("early stopping / load_best_at_end needs an eval_strategy other than `no`")
            if self.eval_strategy != self.save_strategy:
                raise ValueError(
                    f"early stopping / load_best_at_end needs save_strategy equal to eval_strategy "
                    f"({self.eval_strategy!r}), got save_strategy {self.save_strategy!r}"
                )
            if self.eval_strategy == "steps" and (self.save_steps or 0) % (self.eval_steps or 1):
                raise ValueError(f"save_steps ({self.save_steps}) must be a multiple of eval_steps ({self.eval_steps})")
        return self


class RLSettings(_Section):
    """Method-specific settings of preference optimisation and online RL."""

    beta: float | None = Field(
        None, ge=0.0, description="KL / DPO temperature. `None`: 0.1 for dpo and kto, 0.05 for ppo and rloo, 0.0 for grpo."
    )
    dpo_loss: list[str] = Field(["sigmoid"], min_length=1, description="DPO loss type(s), e.g. `[sigmoid]`, `[ipo]`.")
    reward_model: str | None = Field(
        None,
        description="ppo / grpo / rloo: a `reward` run folder (`runs/<id>`) or any sequence-classification "
        "checkpoint (folder or hub id) that scores completions.",
    )
    num_generations: int = Field(2, ge=2, description="grpo / rloo: completions sampled per prompt.")
    max_completion_length: int = Field(64, ge=1, description="ppo / grpo / rloo: tokens generated per completion.")
    ppo_epochs: int = Field(4, ge=1, description="ppo: optimisation epochs per batch of rollouts.")
    temperature: float = Field(0.7, gt=0.0, description="ppo / grpo / rloo: sampling temperature.")


class MixSource(_Section):
    """Another dataset version mixed into the train split (recipe `mix:`)."""

    dataset: str = Field(description="Dataset version `name@N` (or `name` for the latest); only its `train` split is used.")
    weight: float = Field(gt=0.0, lt=1.0, description="Fraction of the mixed train split drawn from this version.")


class Recipe(BaseModel):
    """One training run: base model, dataset version, method, adapter and hyper-parameters."""

    model_config = ConfigDict(extra="forbid", title="recipe")

    name: str | None = Field(None, description="Run name prefix; `None` uses `<method>-<adapter>`.")
    model: str = Field(description="Base model: a local folder or a hub id (offline runs need a folder).")
    revision: str | None = Field(None, description="Hub revision of `model` (branch, tag or commit); `None` is the default branch.")
    dataset: str | None = Field(
        None,
        description="Dataset version `name@N` (or `name` for the latest). `None` inside a pipeline's `train:` "
        "block means the version the pipeline just wrote; on the command line pass --dataset.",
    )
    mix: list[MixSource] = Field(
        [],
        description="Other versions of the same record kind mixed into the train split (against forgetting), e.g. "
        "`[{dataset: general@1, weight: 0.15}]`. `dataset` makes up the rest (1 - the weights) and alone gives the "
        "validation split. Empty: train on `dataset` alone. The sampling rule is in docs/training.md.",
    )
    mix_size: int | None = Field(
        None,
        ge=1,
        description="Rows of the mixed train split. `None`: every `dataset` train row once, and each `mix` version "
        "adds rows so that its weight is its fraction of the total.",
    )
    method: Method = Field("sft", description="Training objective.")
    adapter: Adapter = Field(
        "lora",
        description="What is trained: `full` weights, a PEFT adapter, `bottleneck` adapters (curate.train.bottleneck) "
        "or `head` (frozen encoder + a classification head over the `label` column).",
    )
    lora: LoraSettings = Field(default_factory=LoraSettings, description="PEFT adapter hyper-parameters.")
    bottleneck: BottleneckSettings = Field(
        default_factory=BottleneckSettings, description="Bottleneck adapter settings (adapter `bottleneck`)."
    )
    quantization: QuantSettings = Field(default_factory=QuantSettings, description="Base quantization for `qlora`.")
    training: TrainingSettings = Field(default_factory=TrainingSettings, description="Optimisation and checkpoints.")
    rl: RLSettings = Field(default_factory=RLSettings, description="DPO / KTO / online-RL settings.")
    report_to: Literal["none", "mlflow", "wandb", "tensorboard"] = Field(
        "none", description="Experiment tracker the trainer logs to (its package must be installed)."
    )
    seed: int = Field(0, description="Seed of data order, initialisation of new weights and sampling.")
    output_dir: str = Field("runs", description="Folder that holds `runs/<run-id>/`; relative to the working directory.")
    evaluate: EvaluateConfig | None = Field(
        None,
        description="Held-out evaluation right after training (curate.evaluate; its `dataset` defaults to the "
        "version trained on). `None` skips it; run `curate eval` later instead.",
    )

    @model_validator(mode="after")
    def _compatible(self) -> Recipe:
        if self.adapter == "head" and self.method != "sft":
            raise ValueError(
                f"adapter `head` trains a classifier on the `label` column with method `sft`; got method {self.method!r}"
            )
        if self.method in ONLINE_METHODS and self.adapter in ("prefix", "prompt", "adalora", "head"):
            raise ValueError(f"method {self.method!r} supports adapters full, lora, qlora, dora and ia3, not {self.adapter!r}")
        if self.adapter == "head" and self.training.optim is not None:
            raise ValueError("adapter `head` trains with its own AdamW; remove training.optim")
        if self.method == "reward" and self.adapter in ("prefix", "prompt"):
            raise ValueError("method `reward` scores with a classification head; use adapter full, lora, qlora, dora or ia3")
        if self.adapter == "bottleneck" and self.method not in BOTTLENECK_METHODS:
            raise ValueError(f"adapter `bottleneck` trains with methods {', '.join(BOTTLENECK_METHODS)}, not {self.method!r}")
        if self.method in ONLINE_METHODS and not self.rl.reward_model:
            raise ValueError(f"method {self.method!r} needs rl.reward_model (a reward run folder or classifier checkpoint)")
        if self.training.packing and self.method not in ("sft", "pretrain"):
            raise ValueError(f"training.packing applies to sft and pretrain, not {self.method!r}")
        if self.mix_size is not None and not self.mix:
            raise ValueError("mix_size sets the size of a mixed train split; add `mix:` versions or remove mix_size")
        if self.mix and sum(m.weight for m in self.mix) >= 1.0:
            total, parts = sum(m.weight for m in self.mix), " + ".join(f"{m.weight:g}" for m in self.mix)
            raise ValueError(f"mix weights add up to {total:g} ({parts}); `dataset` needs the rest, so keep their sum below 1")
        names = [m.dataset for m in self.mix]
        if len(set(names)) < len(names):
            raise ValueError(f"mix lists a version twice ({', '.join(sorted({n for n in names if names.count(n) > 1}))})")
        return self
