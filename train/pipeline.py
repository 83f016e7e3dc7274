"""``curate run`` with a ``train:`` block: curate a version, then train on it in the same call."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from curate.extras import require_extra

from .runner import TrainResult, _local, train

if TYPE_CHECKING:
    from rich.console import Console

    from curate.pipeline import RunSummary

__all__ = ["PipelineRun", "train_from_pipeline"]


@dataclass
class PipelineRun:
    """The version a pipeline committed and, when it has a ``train:`` block, the run trained on it."""

    summary: RunSummary
    training: TrainResult | None


def train_from_pipeline(
    path: str | Path,
    *,
    store_root: str | Path,
    output: str | Path | None = None,
    benchmarks_dir: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    console: Console | None = None,
) -> PipelineRun:
    """Run a pipeline file; if it has a ``train:`` recipe, train on the version it just wrote.

    Parameters
    ----------
    path
        Pipeline YAML. The recipe's relative ``model`` / ``rl.reward_model`` paths resolve against its folder.
    store_root
        Dataset store root.
    output
        Folder of run folders; overrides the recipe's ``output_dir``.
    benchmarks_dir, env
        Passed to :func:`curate.pipeline.run_pipeline`.
    console
        Progress bars of the curation part; ``None`` runs quietly.

    A ``dataset`` set in the ``train:`` block is used as given; when it is unset the new
    version (``output@N``) is trained on. A top-level ``evaluate:`` block wins over the recipe's
    and evaluates the run right after training.
    """
    from curate.config import load_pipeline
    from curate.pipeline import run_pipeline

    path = Path(path)
    pipeline = load_pipeline(path)
    recipe = pipeline.train  # type: ignore[attr-defined]
    if recipe is not None:  # before curating: no version committed for a run that cannot start
        require_extra("train", what=f"The `train:` block of {path}")
    summary = run_pipeline(path, store_root=store_root, benchmarks_dir=benchmarks_dir, env=env, console=console)
    if recipe is None:
        return PipelineRun(summary=summary, training=None)
    if pipeline.evaluate is not None:  # type: ignore[attr-defined]
        recipe = recipe.model_copy(update={"evaluate": pipeline.evaluate})  # type: ignore[attr-defined]
    rl = recipe.rl.model_copy(update={"reward_model": _local(recipe.rl.reward_model, path.parent)})
    recipe = recipe.model_copy(update={"model": _local(recipe.model, path.parent), "rl": rl})
    dataset = recipe.dataset or f"{summary.dataset}@{summary.version}"
    result = train(recipe, dataset=dataset, output=output, store=store_root)
    return PipelineRun(summary=summary, training=result)
