"""`curate loop simulate`: the select -> train -> evaluate loop with gold labels in place of annotators.

The standard way to choose an active-learning strategy before paying annotators: start from
``initial`` labels drawn at random (stratified), then for ``rounds`` rounds train the recipe's head,
evaluate it on the test set, and let each strategy pick ``budget`` more rows of the pool, whose gold
labels are revealed. Pool and test texts are embedded once per simulation (the head's encoder is
frozen), so a round costs one head fit.

.. code-block:: yaml

    name: banking_sim
    pool: {path: pool.csv, format: table, mapping: {user: text, assistant: category, label: category}}
    test: {path: test.csv, format: table, mapping: {user: text, assistant: category, label: category}}
    recipe: {model: all-MiniLM-L6-v2, method: sft, adapter: head, training: {epochs: 30, batch_size: 32}}
    strategies: [random, margin, entropy]
    initial: 300
    budget: 300
    rounds: 4
    seeds: 3
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from curate.config import SourceConfig
from curate.errors import ConfigError
from curate.loop._sim_data import SimData, load_data, stratified
from curate.loop._sim_report import write_report
from curate.loop._sim_rounds import fit_and_score, select, single_threaded
from curate.train.recipe import Recipe
from curate.yamlfile import load_yaml_model

__all__ = ["CURVE_COLUMNS", "STRATEGIES", "SimulationConfig", "SimulationResult", "load_simulation", "simulate"]

Strategy = Literal["random", "least_confidence", "margin", "entropy", "diversity", "novelty"]
STRATEGIES: tuple[str, ...] = Strategy.__args__  # type: ignore[attr-defined]
CURVE_COLUMNS = ("strategy", "seed", "round", "labels", "accuracy")


class SimulationConfig(BaseModel):
    """A simulation file: labeled pool and test set, the recipe, the strategies and the labeling schedule."""

    model_config = ConfigDict(extra="forbid", title="simulation")

    name: str = Field(description="Name of the simulation (shown in the summary).")
    # -- data
    pool: SourceConfig = Field(
        description="Labeled rows the strategies pick from (sft or prompt records with a `label`)."
    )
    test: SourceConfig | None = Field(
        None, description="Labeled rows every round is evaluated on. `None`: `test_size` rows held out from the pool."
    )
    pool_size: int | None = Field(
        None,
        ge=1,
        description="Rows of the pool used (a stratified random subset, the same for every seed); `None`: all.",
    )
    test_size: int | None = Field(
        None,
        ge=1,
        description="Rows of the test set used (stratified subset), or held out from the pool without `test`; "
        "`None`: all of `test`.",
    )
    split_seed: int = Field(0, description="Seed of the held-out test rows and the `pool_size` / `test_size` subsets.")
    # -- model
    recipe: Recipe = Field(
        description="The training recipe, e.g. `{model: all-MiniLM-L6-v2, method: sft, adapter: head}`. Only adapter "
        "`head` is simulated; without a validation split, early stopping is off and every epoch runs."
    )
    # -- schedule
    strategies: list[Strategy] = Field(
        list(STRATEGIES), min_length=1, description="Strategies compared: random, least_confidence, margin, entropy "
        "(uncertainty of the head), diversity (k-means of the pool into `budget` clusters, the most uncertain row by "
        "margin of each), novelty (farthest from the labeled rows).",
    )
    initial: int = Field(ge=1, description="Labels to start from, drawn at random from the pool (stratified by label).")
    budget: int = Field(ge=1, description="Labels each strategy adds per round.")
    rounds: int = Field(ge=1, description="Rounds of selection after the initial labels; round 0 is the initial set.")
    seeds: int = Field(
        3, ge=1, description="Repetitions with seeds 0 .. seeds-1 (initial labels, head init, random picks)."
    )

    @field_validator("recipe")
    @classmethod
    def _head(cls, recipe: Recipe) -> Recipe:
        if recipe.adapter != "head":
            raise ValueError(f"simulate trains adapter `head` on frozen embeddings; got adapter {recipe.adapter!r}")
        return recipe

    @model_validator(mode="after")
    def _consistent(self) -> SimulationConfig:
        if self.test is None and self.test_size is None:
            raise ValueError("name a `test` source, or set `test_size` to hold out that many pool rows")
        if len(set(self.strategies)) < len(self.strategies):
            raise ValueError("strategies lists a strategy twice")
        return self

    @property
    def labels_at_end(self) -> int:
        """Labels each strategy holds after the last round."""
        return self.initial + self.rounds * self.budget


@dataclass
class SimulationResult:
    """What a simulation wrote: the curves (one row per strategy x seed x round) and the output files."""

    curves: pl.DataFrame
    out: Path
    summary: str
    seconds: float


def load_simulation(path: str | Path) -> SimulationConfig:
    """Parse and validate a simulation file; :class:`ConfigError` names the line and field of each problem."""
    return load_yaml_model(path, SimulationConfig)


def simulate(
    path: str | Path,
    *,
    out: str | Path,
    cache_dir: str | Path | None = None,
    device: str | None = None,
    console: Console | None = None,
) -> SimulationResult:
    """Run the simulation file ``path``; write ``curves.csv``, ``curves.svg``, ``summary.md`` and ``simulation.json``.

    Parameters
    ----------
    path
        Simulation YAML; relative source paths resolve against its folder.
    out
        Output folder (created; files in it are replaced).
    cache_dir
        Embedding cache folder (e.g. ``Store(root).cache_dir("embeddings")``); ``None`` embeds without a cache.
    device
        Torch device of the encoder (``cpu``, ``cuda``); ``None`` lets sentence-transformers choose.
    console
        Where the progress bar goes; ``None`` runs quietly.

    Raises
    ------
    ConfigError
        Invalid file, or a pool too small for ``initial + rounds x budget`` labels.
    InputError
        A source cannot be read, or holds no labeled sft / prompt rows.
    """
    started = time.perf_counter()
    path, out = Path(path), Path(out)
    config = load_simulation(path)
    with _progress(console) as progress:
        data = load_data(config, base_dir=path.parent, cache_dir=Path(cache_dir) if cache_dir else None, device=device,
                         track=_tracker(progress))  # fmt: skip
        if len(data.pool_y) < config.labels_at_end:
            raise ConfigError(
                f"{path}: the pool has {len(data.pool_y)} rows, fewer than the {config.labels_at_end} labels that "
                f"initial + rounds x budget ({config.initial} + {config.rounds} x {config.budget}) need; lower them."
            )
        task = progress.add_task("simulating", total=len(config.strategies) * config.seeds * (config.rounds + 1))
        with single_threaded():
            rows = _replay(config, data, progress=progress, task=task)
    curves = pl.DataFrame(rows, schema=dict(zip(CURVE_COLUMNS, (pl.String, pl.Int64, pl.Int64, pl.Int64, pl.Float64))),
                          orient="row")  # fmt: skip
    seconds = time.perf_counter() - started
    summary = write_report(curves, out=out, config=config, data_rows=data.counts)
    info = {"simulation": str(path), "config": config.model_dump(mode="json"), "data": data.counts,
            "classes": len(data.classes), "seconds": round(seconds, 1)}  # fmt: skip
    (out / "simulation.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return SimulationResult(curves=curves, out=out, summary=summary, seconds=seconds)


def _replay(config: SimulationConfig, data: SimData, *, progress: Progress, task: TaskID) -> list[tuple]:
    """``(strategy, seed, round, labels, accuracy)`` for every strategy x seed x round."""
    rows = []
    for seed in range(config.seeds):
        start = stratified(data.pool_y, config.initial, rng=np.random.default_rng(seed))
        recipe = config.recipe.model_copy(update={"seed": config.recipe.seed + seed})
        first = fit_and_score(start, pool_x=data.pool_x, pool_y=data.pool_y, test_x=data.test_x,
                              test_y=data.test_y, recipe=recipe)  # fmt: skip
        for strategy in config.strategies:
            labeled, fit = start, first  # round 0 is the same for every strategy of a seed
            for round_ in range(config.rounds + 1):
                progress.update(task, description=f"{strategy} seed {seed} round {round_}")
                if round_:
                    picked = select(strategy, fit=fit, labeled=labeled, pool_x=data.pool_x, budget=config.budget,
                                    seed=seed * 10_007 + round_)  # fmt: skip
                    labeled = np.union1d(labeled, picked)
                    fit = fit_and_score(labeled, pool_x=data.pool_x, pool_y=data.pool_y, test_x=data.test_x,
                                        test_y=data.test_y, recipe=recipe)  # fmt: skip
                rows.append((strategy, seed, round_, len(labeled), fit.accuracy))
                progress.advance(task)
    return rows


def _progress(console: Console | None) -> Progress:
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    return Progress(*columns, TimeElapsedColumn(), console=console, transient=True, disable=console is None)


def _tracker(progress: Progress) -> Any:
    def track(items: Iterable[Any], *, description: str, total: int | None = None) -> Iterator[Any]:
        task = progress.add_task(description, total=total)
        try:
            for item in items:
                yield item
                progress.advance(task)
        finally:
            progress.remove_task(task)

    return track
