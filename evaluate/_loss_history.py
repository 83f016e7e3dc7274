"""Training and evaluation loss per step of a run folder, for the evaluation report's loss curves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from curate.runs import RunError, read_manifest

__all__ = ["loss_curves"]

Curves = dict[str, tuple[list[float], list[float]]]  # name -> (steps, losses)


def loss_curves(run_dir: str | Path | None) -> Curves:
    """``{"train loss": (steps, losses), "eval loss": ...}`` of a run; ``{}`` when there is no run or no history.

    The newest checkpoint's ``trainer_state.json`` holds the trainer's log history with steps;
    it is used when it covers the whole run. Otherwise the loss lists in ``manifest.json`` are
    placed at every ``logging_steps`` (train) and spread evenly over the run (eval).
    """
    if run_dir is None or not Path(run_dir).is_dir():
        return {}
    run_dir = Path(run_dir)
    try:
        metrics = read_manifest(run_dir).get("metrics", {})
    except RunError:
        return {}
    history = _checkpoint_history(run_dir, metrics.get("global_step"))
    if history is not None:
        return _from_history(history)
    out: Curves = {}
    losses, evals = metrics.get("train_loss_history") or [], metrics.get("eval_loss_history") or []
    every = _logging_steps(run_dir)
    if losses:
        out["train loss"] = ([every * (i + 1) for i in range(len(losses))], list(losses))
    if evals:
        last = metrics.get("global_step") or len(evals)
        out["eval loss"] = ([last * (i + 1) / len(evals) for i in range(len(evals))], list(evals))
    return out


def _checkpoint_history(run_dir: Path, global_step: int | None) -> list[dict[str, Any]] | None:
    states = sorted(run_dir.glob("checkpoints/checkpoint-*/trainer_state.json"), key=lambda p: int(p.parent.name.rsplit("-", 1)[1]))
    if not states or global_step is None:
        return None
    state = json.loads(states[-1].read_text(encoding="utf-8"))
    return state.get("log_history") if state.get("global_step") == global_step else None


def _from_history(history: list[dict[str, Any]]) -> Curves:
    out: Curves = {}
    for entry in history:
        for key, value in entry.items():
            if key == "loss" or (key.startswith("eval_") and key.endswith("loss")):
                name = "train loss" if key == "loss" else key.removeprefix("eval_").replace("_", " ")
                name = "eval loss" if name == "loss" else name
                steps, values = out.setdefault(name, ([], []))
                steps.append(entry.get("step", len(steps) + 1))
                values.append(value)
    return out


def _logging_steps(run_dir: Path) -> int:
    try:
        recipe = yaml.safe_load((run_dir / "recipe.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return 1
    return int((recipe.get("training") or {}).get("logging_steps") or 1)
