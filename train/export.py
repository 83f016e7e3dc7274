"""Loading a run's artefact back, and ``export``: a standalone checkpoint from a run.

A PEFT run stores only its adapter; ``export_run(run, merge=True)`` merges it into the base
model (``merge_and_unload``) and writes a plain transformers checkpoint (safetensors +
tokenizer) that loads without PEFT. A QLoRA adapter is merged into the base loaded in full
precision, not into the 4-bit weights, so the export is not re-quantized.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from curate.errors import ConfigError

from curate.runs import read_manifest, resolve_run, update_manifest

__all__ = ["export_run", "load_trained"]


def load_trained(run: str | Path, *, root: str | Path = "runs", merge: bool = False) -> tuple[Any, Any]:
    """The trained model (eval mode, CPU, float32) and tokenizer of a run.

    Parameters
    ----------
    run
        Run folder or run id under ``root``.
    merge
        Merge a PEFT adapter into the base and return a plain transformers model. Without it a
        QLoRA run comes back as it trained (quantized base + adapter). A ``bottleneck`` run cannot
        be merged (ConfigError) and comes back as base + adapters.

    A ``head`` run returns a :class:`curate.train.head.HeadClassifier` and its tokenizer.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    from .bottleneck import BOTTLENECK_CONFIG, load_bottleneck_model

    run_dir = resolve_run(run, root=root)
    manifest = read_manifest(run_dir)
    model_dir = run_dir / manifest.get("artefact", "model")
    if manifest.get("status") != "completed":
        raise ConfigError(f"Run {run_dir.name} is {manifest.get('status')!r}, not completed; it has no final artefact.")
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    if manifest["adapter"] == "head":
        from .head import HeadClassifier

        return HeadClassifier.load(model_dir), tokenizer
    reward = manifest["method"] == "reward"
    if (model_dir / BOTTLENECK_CONFIG).is_file():
        if merge:
            raise ConfigError(
                f"Run {run_dir.name} trained bottleneck adapters, which add a non-linearity and cannot be merged into "
                "the base weights; export it with --no-merge (copies the adapters + tokenizer)."
            )
        base = manifest.get("base_model") or {}
        return load_bottleneck_model(model_dir, base_model=base.get("path") or base.get("id")), tokenizer
    if (model_dir / "adapter_config.json").is_file():
        from peft import AutoPeftModelForCausalLM, AutoPeftModelForSequenceClassification

        if manifest["adapter"] == "qlora" and not merge:
            model = _quantized_with_adapter(run_dir, model_dir, tokenizer=tokenizer, reward=reward)
            return model.eval(), tokenizer
        cls = AutoPeftModelForSequenceClassification if reward else AutoPeftModelForCausalLM
        model = cls.from_pretrained(str(model_dir), dtype=torch.float32, **({"num_labels": 1} if reward else {}))
        if merge:
            model = model.merge_and_unload()
    else:
        cls = AutoModelForSequenceClassification if reward else AutoModelForCausalLM
        model = cls.from_pretrained(str(model_dir), dtype=torch.float32)
    return model.eval(), tokenizer


def _quantized_with_adapter(run_dir: Path, model_dir: Path, *, tokenizer: Any, reward: bool) -> Any:
    """A QLoRA run as it trained: the base quantized with the run's settings, plus the adapter."""
    from peft import PeftModel

    from .defaults import detect_device
    from .models import load_model
    from .runner import load_recipe

    recipe = load_recipe(run_dir / "recipe.yaml")
    base = load_model(recipe, device=detect_device(recipe), tokenizer=tokenizer, num_labels=1 if reward else None)
    return PeftModel.from_pretrained(base, str(model_dir))


def export_run(run: str | Path, *, out: str | Path | None = None, merge: bool = True, root: str | Path = "runs") -> Path:
    """Write a standalone checkpoint of a run (default ``runs/<id>/export``) and return its folder.

    Parameters
    ----------
    run
        Run folder or run id under ``root``.
    out
        Target folder; must not exist yet.
    merge
        Merge a PEFT adapter into the base weights. ``False`` copies the adapter as it is.

    Raises
    ------
    ConfigError
        The target exists, or the run is a ``head`` run with ``merge`` (a head has no base to merge into).
    """
    run_dir = resolve_run(run, root=root)
    manifest = read_manifest(run_dir)
    target = Path(out) if out else run_dir / "export"
    if target.exists():
        raise ConfigError(f"Export target {target} already exists; remove it or pass another --out.")
    if manifest.get("adapter") == "head" or not merge:
        if manifest.get("adapter") == "head" and merge:
            raise ConfigError(f"Run {run_dir.name} trained a classification head; export it with --no-merge (copies head + tokenizer).")
        shutil.copytree(run_dir / manifest.get("artefact", "model"), target)
    else:
        model, tokenizer = load_trained(run_dir, merge=True)
        model.save_pretrained(str(target))
        tokenizer.save_pretrained(str(target))
    update_manifest(run_dir, exports=[*read_manifest(run_dir).get("exports", []), {"path": str(target), "merged": merge}])
    return target
