"""Load what ``curate eval`` scores: a run from the registry (full weights, PEFT adapter, bottleneck
adapters, reward model or classification head) or a plain model folder / hub id.

A run's ``manifest.json`` (written by :mod:`curate.train`) gives the base model, the method
and the adapter; its weights or adapter and tokenizer are in ``runs/<id>/model/``. PEFT
adapters are loaded on a full-precision base for evaluation, also for QLoRA runs (the
scores then reflect the adapter, not quantisation error).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from curate.errors import CurateError
from curate.runs import find_run, read_manifest

__all__ = ["LoadedModel", "ModelRef", "load_model", "resolve_target"]

Role = Literal["causal_lm", "reward", "classifier"]


@dataclass(frozen=True)
class ModelRef:
    """What a name on the command line points at, before any weights are loaded."""

    name: str  # run id or model path, as shown in reports
    path: Path | str  # folder with weights / adapter, or a hub id
    role: Role
    run_dir: Path | None = None
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def base_model(self) -> str | None:
        """The run's base model path / id from its manifest (None for a plain model)."""
        base = self.manifest.get("base_model") or {}
        if isinstance(base, str):
            return base
        return base.get("path") or base.get("id")

    @property
    def trained_on(self) -> str | None:
        """``name@N`` the run was trained on (None for a plain model)."""
        ds = self.manifest.get("dataset") or {}
        return ds if isinstance(ds, str) else ds.get("ref")

    @property
    def store_root(self) -> str | None:
        """Store root the run's dataset came from, when the manifest records it."""
        ds = self.manifest.get("dataset") or {}
        return None if isinstance(ds, str) else ds.get("store")


@dataclass
class LoadedModel:
    """A model in eval mode with its tokenizer."""

    ref: ModelRef
    model: Any
    tokenizer: Any

    @property
    def pair(self) -> tuple[Any, Any]:
        """``(model, tokenizer)``."""
        return self.model, self.tokenizer


def _role(manifest: dict[str, Any]) -> Role:
    if manifest.get("method") == "reward":
        return "reward"
    if manifest.get("adapter") == "head":
        return "classifier"
    return "causal_lm"


def resolve_target(target: str | Path, *, runs_root: str | Path = "runs", role: Role | None = None) -> ModelRef:
    """A run (folder or id under ``runs_root``) or a model folder / hub id.

    Parameters
    ----------
    target
        ``runs/<id>``, ``<id>``, a model folder, or a hub id (offline only if cached).
    runs_root
        Where run ids are looked up.
    role
        Force how the weights are loaded; ``None`` takes it from the run's method / adapter
        (``reward`` -> reward model, ``head`` -> classifier) or a model folder's config
        (one-label sequence classifier -> reward model).
    """
    run_dir = find_run(target, root=runs_root)
    if run_dir is not None:
        manifest = read_manifest(run_dir)
        weights = run_dir / "model" if (run_dir / "model").is_dir() else run_dir
        return ModelRef(name=run_dir.name, path=weights, role=role or _role(manifest), run_dir=run_dir, manifest=manifest)
    path = Path(target)
    if path.exists() and not path.is_dir():
        raise CurateError(f"{target} is a file; pass a run folder, a run id under {runs_root}, or a model folder.")
    if not path.exists() and not _looks_like_hub_id(str(target)):
        raise CurateError(
            f"No run or model {str(target)!r}: not a run folder, not a run id under {runs_root}, not a model "
            "folder, and not a hub id (`org/name`)."
        )
    return ModelRef(name=str(target), path=path if path.exists() else str(target), role=role or _folder_role(path))


def _looks_like_hub_id(text: str) -> bool:
    return text.count("/") == 1 and not text.startswith((".", "/", "~"))


def _folder_role(path: Path) -> Role:
    config = path / "config.json"
    if not config.is_file():
        return "causal_lm"
    data = json.loads(config.read_text(encoding="utf-8"))
    if any(a.endswith("ForSequenceClassification") for a in data.get("architectures") or []):
        return "reward" if len(data.get("id2label") or {0: 0}) == 1 else "classifier"
    return "causal_lm"


def _tokenizer(path: Path | str, fallback: str | None) -> Any:
    from transformers import AutoTokenizer

    source = path
    if isinstance(path, Path) and not any((path / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json")):
        if fallback is None:
            raise CurateError(f"{path} has no tokenizer files and no base model is known to take them from.")
        source = fallback
    tokenizer = AutoTokenizer.from_pretrained(source)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(ref: ModelRef, *, device: str | None = None) -> LoadedModel:
    """Load weights (base + adapter for PEFT runs) and tokenizer, in eval mode, float32 on CPU.

    Parameters
    ----------
    ref
        From :func:`resolve_target`.
    device
        ``cpu``, ``cuda``, ...; ``None`` picks CUDA when available.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    from curate.train.bottleneck import BOTTLENECK_CONFIG, load_bottleneck_model

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.float32 if device == "cpu" else "auto"
    path = ref.path
    if ref.role == "classifier" and isinstance(path, Path) and (path / "head.json").is_file():
        from curate.train.head import HeadClassifier

        return LoadedModel(ref=ref, model=HeadClassifier.load(path, device=device), tokenizer=None)
    adapter = isinstance(path, Path) and (path / "adapter_config.json").is_file()
    auto = AutoModelForCausalLM if ref.role == "causal_lm" else AutoModelForSequenceClassification
    tokenizer = _tokenizer(path, ref.base_model)
    if isinstance(path, Path) and (path / BOTTLENECK_CONFIG).is_file():
        model = load_bottleneck_model(path, base_model=ref.base_model, dtype=dtype)
    elif adapter:
        from peft import PeftModel

        adapter_cfg = json.loads((path / "adapter_config.json").read_text(encoding="utf-8"))
        base_path = ref.base_model or adapter_cfg.get("base_model_name_or_path")
        if not base_path:
            raise CurateError(f"{path} holds a PEFT adapter but neither the run manifest nor adapter_config.json names its base model.")
        kwargs: dict[str, Any] = {"dtype": dtype}
        if ref.role == "reward":
            kwargs["num_labels"] = 1
        base = auto.from_pretrained(base_path, **kwargs)
        model = PeftModel.from_pretrained(base, str(path))
    else:
        model = auto.from_pretrained(str(path), dtype=dtype)
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    model.to(device)
    model.eval()
    return LoadedModel(ref=ref, model=model, tokenizer=tokenizer)
