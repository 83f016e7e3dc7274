"""Chain pipeline -> train -> evaluate: the one place ``curate run``, ``curate train`` and ``curate loop`` do it.

:mod:`curate.train` never imports :mod:`curate.evaluate` and evaluation reads runs through
:mod:`curate.runs`; this module is where the two meet.

>>> from curate.orchestrate import train_and_evaluate
>>> training, evaluation = train_and_evaluate("recipe.yaml", dataset="support@3")   # doctest: +SKIP
>>> training.path, evaluation.metric("exact_match").verdict                          # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from curate.config import load_pipeline
from curate.errors import ConfigError
from curate.extras import require_extra
from curate.pipeline import RunSummary, run_pipeline
from curate.train.defaults import detect_device
from curate.train.processes import Processes, current_processes
from curate.train.recipe import Recipe
from curate.train.runner import TrainResult, load_recipe, local_paths, train

if TYPE_CHECKING:
    from rich.console import Console

    from curate.evaluate.config import EvaluateConfig
    from curate.evaluate.results import EvalResult

__all__ = ["PipelineRun", "run", "train_and_evaluate"]

# Under `accelerate launch` the other processes wait this long for the main one to curate; the
# launch's own collective timeout (10 min under NCCL) is shorter than a large curation.
CURATION_PATIENCE = timedelta(hours=24)


@dataclass
class PipelineRun:
    """What ``curate run`` produced: the committed version and, with a ``train:`` block, the run and its evaluation."""

    summary: RunSummary
    training: TrainResult | None = None
    evaluation: EvalResult | None = None
    is_main: bool = True  # False on the other processes of an `accelerate launch`: the main one curated and reports


def train_and_evaluate(
    recipe: Recipe | str | Path,
    *,
    dataset: str | None = None,
    model: str | None = None,
    store_root: str | Path = "datasets",
    output: str | Path | None = None,
    resume: bool = False,
    evaluate: EvaluateConfig | None = None,
    callbacks: list[Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[TrainResult, EvalResult | None]:
    """Train a run, then evaluate it when the recipe (or ``evaluate``) has an ``evaluate:`` block.

    Parameters
    ----------
    recipe
        A :class:`~curate.train.recipe.Recipe` or the path of a recipe YAML.
    dataset, model, output, resume, callbacks
        As for :func:`curate.train.runner.train` (``output`` is its folder of run folders).
    store_root
        Dataset store root.
    evaluate
        An ``evaluate:`` block that wins over the recipe's (a pipeline's top-level one);
        ``None`` keeps the recipe's.
    env
        Environment a step may read credentials from (the CLI passes ``os.environ``); no step
        reads it yet. ``None``: none.

    Returns
    -------
    tuple
        The :class:`~curate.train.runner.TrainResult` (its ``manifest`` includes the recorded
        evaluation) and the :class:`~curate.evaluate.results.EvalResult`, or ``None`` when
        neither block asks for one.
    """
    del env  # accepted so every caller passes what `curate run` passes; nothing reads credentials yet
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe, model=model, dataset=dataset, output_dir=str(output) if output else None)
    result = train(recipe, dataset=dataset, model=model, output=output, store=store_root, resume=resume, callbacks=callbacks)
    if (evaluate is None and recipe.evaluate is None) or not result.is_main:  # under accelerate launch the main process evaluates
        return result, None
    from curate.evaluate.run import evaluate_after_training  # torch-free, but only needed with a block
    from curate.runs import read_manifest

    evaluation = evaluate_after_training(result.path, recipe_config=recipe.evaluate, pipeline_config=evaluate, store_root=store_root)
    result.manifest = read_manifest(result.path)
    return result, evaluation


def run(
    path: str | Path,
    *,
    store_root: str | Path,
    output: str | Path | None = None,
    benchmarks_dir: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    console: Console | None = None,
    engine: str | None = None,
    address: str | None = None,
    resume: bool = False,
) -> PipelineRun:
    """``curate run``: run a pipeline file; with a ``train:`` block, train on the version it wrote and evaluate.

    Parameters
    ----------
    path
        Pipeline YAML, loaded once. The recipe's relative ``model`` / ``rl.reward_model`` paths
        resolve against its folder.
    store_root
        Dataset store root.
    output
        Folder of run folders; overrides the recipe's ``output_dir``.
    benchmarks_dir, env, engine, address, resume
        Passed to :func:`curate.pipeline.run_pipeline` (``engine`` / ``address`` ``None``: the
        pipeline's own ``engine`` / ``ray_address``).
    console
        Progress bars of the curation part; ``None`` runs quietly.

    A ``dataset`` set in the ``train:`` block is used as given; when it is unset the new
    version (``output@N``) is trained on. A top-level ``evaluate:`` block wins over the recipe's.

    Under ``accelerate launch`` (a ``train:`` block), the main process alone curates and commits;
    the others wait for its summary (or raise when it failed), then every process trains the
    same version.
    """
    path = Path(path)
    pipeline = load_pipeline(path)
    recipe = pipeline.train  # type: ignore[attr-defined]
    processes = Processes()
    launched = int((env or {}).get("WORLD_SIZE") or 1)  # set by torchrun / accelerate launch for every process
    if recipe is None and launched > 1:
        raise ConfigError(
            f"{path} has no `train:` block, yet this is one of {launched} processes of a launcher (accelerate launch / "
            "torchrun): curation runs in one process. Run it with plain `curate run`, or add a `train:` block to "
            "curate once and train on every process."
        )
    if recipe is not None:  # before curating: no version committed for a run that cannot start
        require_extra("train", what=f"The `train:` block of {path}")
        processes = current_processes(cpu=detect_device(recipe).use_cpu)  # as `train` will find them
    summary = processes.on_main(
        lambda: run_pipeline(path, config=pipeline, store_root=store_root, benchmarks_dir=benchmarks_dir, env=env, console=console,
                             engine=engine, address=address, resume=resume),
        what=f"curating {path}", patience=CURATION_PATIENCE,
    )  # fmt: skip
    if recipe is None:
        return PipelineRun(summary=summary)
    recipe = local_paths(recipe, path.parent)
    training, evaluation = train_and_evaluate(
        recipe, dataset=recipe.dataset or f"{summary.dataset}@{summary.version}", store_root=store_root, output=output,
        evaluate=pipeline.evaluate, env=env,  # type: ignore[attr-defined]
    )  # fmt: skip
    return PipelineRun(summary=summary, training=training, evaluation=evaluation, is_main=processes.is_main)
