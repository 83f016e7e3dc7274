"""Loading the base model and tokenizer, quantizing it, and building the PEFT adapter config.

The QLoRA CPU trap (bitsandbytes 0.50, ``notes/training-stack.md`` 2c): on CPUs with
AVX512-BF16, the first eval-mode no-grad forward of a ``Linear4bit`` (``generate``, Trainer
evaluation) permanently repacks its weight into an inference-only layout; later training
then crashes (layers with bias) or silently computes wrong gradients (layers without bias).
:func:`disable_cpu_inference_repack` turns that repack off on every 4-bit layer; every
quantized model this module loads goes through it.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from curate.errors import ConfigError

from .defaults import Device
from .recipe import Recipe

if TYPE_CHECKING:
    from peft import PeftConfig
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = [
    "disable_cpu_inference_repack",
    "load_model",
    "load_tokenizer",
    "model_fingerprint",
    "peft_config",
]

log = logging.getLogger(__name__)


def load_tokenizer(recipe: Recipe) -> PreTrainedTokenizerBase:
    """The base model's tokenizer; a missing pad token falls back to the eos token."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(recipe.model, revision=recipe.revision)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _quantization_config(recipe: Recipe, device: Device) -> Any:
    import torch
    from transformers import BitsAndBytesConfig

    q = recipe.quantization
    if q.bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    dtype = {"auto": torch.bfloat16 if device.bf16 else torch.float32, "float32": torch.float32,
             "bfloat16": torch.bfloat16, "float16": torch.float16}[q.compute_dtype]  # fmt: skip
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=q.quant_type,
        bnb_4bit_use_double_quant=q.double_quant,
        bnb_4bit_compute_dtype=dtype,
    )


def load_model(
    recipe: Recipe, *, device: Device, tokenizer: PreTrainedTokenizerBase, num_labels: int | None = None, gpu: int = 0
) -> PreTrainedModel:
    """Load the base model for ``recipe``: a causal LM, or a sequence classifier when ``num_labels`` is set.

    Parameters
    ----------
    recipe
        Gives the model path / id, revision, (for ``qlora``) the quantization and (for ``bottleneck``)
        the adapters, attached to the frozen base here.
    device
        Resolved device; a quantized model is placed on it with ``device_map``.
    tokenizer
        Its pad token id is copied into the model config (classifiers need it to find the last token).
    num_labels
        ``None`` loads ``AutoModelForCausalLM``; an int loads ``AutoModelForSequenceClassification``.
    gpu
        CUDA device a quantized model is placed on: the process's local index under
        ``accelerate launch`` (each process holds its own copy on its own GPU), 0 otherwise.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    kwargs: dict[str, Any] = {"revision": recipe.revision}
    if recipe.adapter == "qlora":
        kwargs["quantization_config"] = _quantization_config(recipe, device)
        kwargs["device_map"] = {"": "cpu" if device.kind == "cpu" else gpu}
    else:
        kwargs["dtype"] = torch.float32 if device.kind == "cpu" else "auto"
    if num_labels is None:
        model = AutoModelForCausalLM.from_pretrained(recipe.model, **kwargs)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(recipe.model, num_labels=num_labels, **kwargs)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    if recipe.adapter == "qlora":
        disable_cpu_inference_repack(model)
    if recipe.adapter == "bottleneck":
        from .bottleneck import add_bottleneck

        add_bottleneck(model, recipe.bottleneck)  # freezes the base; only the adapters train
    return model


def disable_cpu_inference_repack(model: Any) -> int:
    """Stop bitsandbytes from repacking 4-bit weights into its CPU inference-only layout.

    Returns the number of ``Linear4bit`` layers changed. Safe on GPU and on models without
    4-bit layers (it then changes nothing).
    """
    try:
        from bitsandbytes.nn import Linear4bit
    except ImportError:
        return 0
    changed = 0
    for module in model.modules():
        if isinstance(module, Linear4bit):
            module.support_avx512bf16_for_cpu = False
            changed += 1
    return changed


def peft_config(recipe: Recipe, *, task_type: str, total_steps: int | None = None) -> PeftConfig | None:
    """The PEFT config of the recipe's adapter, or None for ``full`` / ``head`` / ``bottleneck`` (not PEFT).

    ``task_type`` is ``CAUSAL_LM`` or ``SEQ_CLS``. ``total_steps`` is needed by AdaLoRA's
    rank schedule. ``target_modules: all-linear`` means PEFT's per-architecture default for IA3.
    """
    import peft

    a, lo = recipe.adapter, recipe.lora
    if a in ("full", "head", "bottleneck"):
        return None
    if a in ("lora", "qlora", "dora"):
        return peft.LoraConfig(
            r=lo.r, lora_alpha=lo.alpha, lora_dropout=lo.dropout, target_modules=lo.target_modules,
            use_dora=a == "dora", task_type=task_type,
        )  # fmt: skip
    if a == "adalora":
        if not total_steps:
            raise ConfigError("adapter `adalora` needs the number of training steps for its rank schedule.")
        return peft.AdaLoraConfig(
            init_r=lo.r, target_r=max(1, lo.r // 2), lora_alpha=lo.alpha, lora_dropout=lo.dropout,
            target_modules=lo.target_modules, total_step=total_steps, tinit=0, tfinal=0, deltaT=1,
            task_type=task_type,
        )  # fmt: skip
    if a == "ia3":
        targets = None if lo.target_modules == "all-linear" else lo.target_modules
        return peft.IA3Config(target_modules=targets, feedforward_modules=[] if targets else None, task_type=task_type)
    if a == "prefix":
        return peft.PrefixTuningConfig(num_virtual_tokens=lo.num_virtual_tokens, task_type=task_type)
    if a == "prompt":
        return peft.PromptTuningConfig(num_virtual_tokens=lo.num_virtual_tokens, task_type=task_type)
    raise ConfigError(f"Unknown adapter {a!r}.")  # unreachable: the recipe model restricts it


def model_fingerprint(model: str, *, revision: str | None = None) -> dict[str, Any]:
    """Identity of a base model for the manifest.

    A local folder gets the sha256 of its ``config.json`` and weight files (``*.safetensors``,
    ``*.bin``), streamed; a hub id gets the revision it was loaded at (the commit hash when
    the hub cache knows it).
    """
    path = Path(model)
    if path.is_dir():
        digest = hashlib.sha256()
        files = sorted(p for p in path.iterdir() if p.name == "config.json" or p.suffix in (".safetensors", ".bin"))
        for f in files:
            digest.update(f.name.encode())
            with f.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 22), b""):
                    digest.update(block)
        return {"path": str(path.resolve()), "sha256": digest.hexdigest(), "files": [f.name for f in files]}
    commit = None
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(model, "config.json", revision=revision)
        if isinstance(cached, str):
            commit = Path(cached).parent.name
    except Exception:  # noqa: BLE001 - the hash is informative; a failed lookup must not fail a run
        commit = None
    return {"id": model, "revision": revision or "main", "commit": commit}
