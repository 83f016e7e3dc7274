"""curate.train: trainers on TRL / PEFT / bitsandbytes that train from dataset versions.

>>> from curate.train import train
>>> result = train("pipelines/train-support.yaml", dataset="support@3")   # doctest: +SKIP
>>> result.path, result.metrics["train_sample_loss_after"]                 # doctest: +SKIP

Importing this package is cheap and imports nothing from the rest of curate: names load on
first use (``curate.config`` imports :mod:`curate.train.recipe` for the pipeline's ``train:``
block), and torch, transformers and TRL load when a run starts. Training never evaluates:
:func:`curate.orchestrate.train_and_evaluate` runs a recipe's ``evaluate:`` block after it.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = [
    "Recipe",
    "TrainResult",
    "export_run",
    "list_runs",
    "load_recipe",
    "load_trained",
    "record_evaluation",
    "show_run",
    "train",
]

_WHERE = {
    "Recipe": "recipe",
    "TrainResult": "runner",
    "load_recipe": "runner",
    "train": "runner",
    "export_run": "export",
    "load_trained": "export",
    "list_runs": "registry",  # curate.runs; kept here for callers of the old path
    "record_evaluation": "registry",
    "show_run": "registry",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'curate.train' has no attribute {name!r}")
    return getattr(import_module(f".{_WHERE[name]}", __name__), name)
