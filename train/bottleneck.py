"""Bottleneck adapters (Houlsby / Pfeiffer): down-projection -> non-linearity -> up-projection.

Each adapter is added to the output of a decoder layer's attention and/or feed-forward block,
before that block's residual add: ``h + up(act(down(h)))``. ``up`` starts at zero, so a fresh
adapter leaves the model's outputs unchanged. The base weights are frozen; only adapters train.

Why not a library: AdapterHub's ``adapters`` (1.3.0, the newest) requires
``transformers~=4.57.6`` and curate runs on transformers 5. PEFT's custom-module path swaps
LoRA layers: its ``adapter_config.json`` would say LORA, and any loader not told otherwise
(``PeftModel.from_pretrained``, lm-eval) would rebuild plain LoRA layers, silently where the
shapes happen to match (``o_proj``). So the adapter is this small module, attached with forward
hooks: the base model keeps its classes and state-dict keys, and the adapters appear as
``<block>.bottleneck.{down,up}``.

A run saves only the adapter, in ``model/``: ``bottleneck_config.json`` (base model, blocks,
sizes) and ``bottleneck_model.safetensors``. :func:`load_bottleneck_model` puts it back on the
base. A non-linear adapter cannot be merged into the base weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from curate.errors import ConfigError

if TYPE_CHECKING:
    from .recipe import BottleneckSettings

__all__ = [
    "BOTTLENECK_CONFIG",
    "BOTTLENECK_WEIGHTS",
    "BottleneckAdapter",
    "add_bottleneck",
    "attach_bottleneck",
    "load_bottleneck",
    "load_bottleneck_model",
    "save_bottleneck",
]

BOTTLENECK_CONFIG = "bottleneck_config.json"
BOTTLENECK_WEIGHTS = "bottleneck_model.safetensors"
FORMAT = "curate-bottleneck/1"
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}


class BottleneckAdapter(nn.Module):
    """``h + up(act(down(h)))`` over the last dimension; ``up`` is zero-initialised (identity at start)."""

    def __init__(self, hidden: int, size: int, *, activation: str) -> None:
        super().__init__()
        self.activation = activation
        self.down = nn.Linear(hidden, size)
        self.act = ACTIVATIONS[activation]()
        self.up = nn.Linear(size, hidden)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # h: (batch, seq, hidden)
        delta = self.up(self.act(self.down(h.to(self.down.weight.dtype))))
        return h + delta.to(h.dtype)


def _add_to_output(module: nn.Module, args: Any, output: Any) -> Any:
    # attention blocks return (hidden, attn_weights, ...); feed-forward blocks return hidden
    if isinstance(output, tuple):
        return (module.bottleneck(output[0]), *output[1:])
    return module.bottleneck(output)


def _hidden_size(model: nn.Module) -> int:
    config = model.config
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return int(text.hidden_size)


def attach_bottleneck(model: nn.Module, blocks: list[str], *, hidden: int, size: int, activation: str) -> nn.Module:
    """Attach one adapter to each named block (a module path such as ``model.layers.0.mlp``).

    The adapters are created on the device of each block's first parameter, in float32 (they are
    the trained weights; the input is cast to float32 and the output back to the block's dtype).
    """
    modules = dict(model.named_modules())
    missing = [b for b in blocks if b not in modules]
    if missing:
        raise ConfigError(
            f"The bottleneck adapter names block(s) {', '.join(missing[:3])} that {type(model).__name__} does not "
            "have; load it onto the base model it was trained on."
        )
    for name in blocks:
        block = modules[name]
        if hasattr(block, "bottleneck"):
            raise ConfigError(f"Block {name} of {type(model).__name__} already has a bottleneck adapter.")
        device = next(block.parameters()).device
        block.add_module("bottleneck", BottleneckAdapter(hidden, size, activation=activation).to(device))
        block.register_forward_hook(_add_to_output)
    return model


def _blocks(model: nn.Module, settings: BottleneckSettings) -> list[str]:
    wanted = [settings.ffn_module]
    if settings.placement == "houlsby":
        wanted.insert(0, settings.attention_module)
    blocks = [n for n, _ in model.named_modules() if n.rsplit(".", 1)[-1] in wanted]  # model order
    absent = [w for w in wanted if not any(n.rsplit(".", 1)[-1] == w for n in blocks)]
    if absent:
        raise ConfigError(
            f"bottleneck: {type(model).__name__} has no module named {' or '.join(map(repr, absent))}; set "
            "bottleneck.attention_module / bottleneck.ffn_module to the names of the attention and feed-forward "
            "blocks inside each decoder layer (Llama, Qwen, Mistral: self_attn / mlp; GPT-2: attn / mlp)."
        )
    return blocks


def add_bottleneck(model: nn.Module, settings: BottleneckSettings) -> nn.Module:
    """Freeze ``model`` and attach trainable bottleneck adapters as ``settings`` place them.

    Parameters
    ----------
    model
        A transformers model (``config.hidden_size`` gives the adapter's outer width).
    settings
        The recipe's ``bottleneck:`` block: width (``size`` or hidden / ``reduction_factor``),
        activation and placement (``houlsby``: after attention and feed-forward; ``pfeiffer``:
        after feed-forward only).

    Returns the same model, changed in place.
    """
    hidden = _hidden_size(model)
    size = settings.size or max(1, hidden // settings.reduction_factor)
    model.requires_grad_(False)
    attach_bottleneck(model, _blocks(model, settings), hidden=hidden, size=size, activation=settings.activation)
    if hasattr(model, "enable_input_require_grads"):
        # with activation checkpointing (GPU default) a frozen embedding would cut the adapters' gradients
        model.enable_input_require_grads()
    return model


def _adapter_blocks(model: nn.Module) -> dict[str, BottleneckAdapter]:
    return {n.removesuffix(".bottleneck"): m for n, m in model.named_modules() if isinstance(m, BottleneckAdapter)}


def save_bottleneck(model: nn.Module, folder: str | Path, *, base_model: str) -> Path:
    """Write the adapters of ``model`` (only them) and their config to ``folder``; returns ``folder``.

    ``base_model`` is the folder or hub id the adapters were trained on, recorded in the config.
    """
    from safetensors.torch import save_file

    adapters = _adapter_blocks(model)
    if not adapters:
        raise ConfigError(f"{type(model).__name__} has no bottleneck adapters to save.")
    first = next(iter(adapters.values()))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights = {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if ".bottleneck." in n}
    save_file(weights, str(folder / BOTTLENECK_WEIGHTS), metadata={"format": "pt"})
    config = {
        "format": FORMAT,
        "base_model_name_or_path": base_model,
        "hidden_size": first.down.in_features,
        "size": first.down.out_features,
        "activation": first.activation,
        "blocks": list(adapters),
    }
    (folder / BOTTLENECK_CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return folder


def _read_config(folder: Path) -> dict[str, Any]:
    path = folder / BOTTLENECK_CONFIG
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"Cannot read bottleneck adapter config {path}: {exc}.") from exc
    if config.get("format") != FORMAT:
        raise ConfigError(f"{path} has format {config.get('format')!r}; this curate reads {FORMAT!r}.")
    return config


def load_bottleneck(model: nn.Module, folder: str | Path) -> nn.Module:
    """Attach the adapters saved in ``folder`` to ``model`` (its base), load their weights and freeze all."""
    from safetensors.torch import load_file

    folder = Path(folder)
    config = _read_config(folder)
    hidden, size, activation = config["hidden_size"], config["size"], config["activation"]
    attach_bottleneck(model, config["blocks"], hidden=hidden, size=size, activation=activation)
    weights = load_file(str(folder / BOTTLENECK_WEIGHTS))
    expected = {n for n, _ in model.named_parameters() if ".bottleneck." in n}
    if set(weights) != expected:
        odd = sorted(set(weights) ^ expected)[:3]
        raise ConfigError(f"{folder / BOTTLENECK_WEIGHTS} does not match {BOTTLENECK_CONFIG} (keys {', '.join(odd)}).")
    model.load_state_dict(weights, strict=False)
    model.requires_grad_(False)
    return model


def load_bottleneck_model(
    folder: str | Path, *, base_model: str | None = None, dtype: Any = torch.float32, device: str | None = None
) -> nn.Module:
    """The base causal LM with the adapters of ``folder`` on it, in eval mode.

    Parameters
    ----------
    folder
        A run's ``model/`` folder (holds ``bottleneck_config.json``).
    base_model
        Base model folder or hub id; ``None`` takes the one recorded in the config.
    dtype
        Dtype of the base weights (the adapters stay float32).
    device
        Where to put the model; ``None`` leaves it where ``from_pretrained`` put it (CPU).
    """
    from transformers import AutoModelForCausalLM

    folder = Path(folder)
    base = base_model or _read_config(folder)["base_model_name_or_path"]
    model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype)
    if device is not None:
        model.to(device)
    return load_bottleneck(model, folder).eval()
