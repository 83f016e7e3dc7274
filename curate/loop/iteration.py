"""``curate loop LOOP.yaml``: one resumable iteration of collect -> select -> propose -> push -> label -> merge -> train -> gate.

Each step records what it did in ``loops/<name>/<iteration>/<step>.json`` once it is done
(:mod:`curate.loop.state`); a call resumes the open iteration at its first step not done, so a
step is never run twice (a version is never committed twice, a record never pushed twice). The
``label`` step waits for annotators: while records are pending it records how many and the call
stops there; the next call pulls again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from curate.errors import ConfigError
from curate.loop import _steps
from curate.loop.config import LoopConfig, load_loop
from curate.loop.state import STEPS, IterationState, LoopState
from curate.store import Store

if TYPE_CHECKING:
    import argilla as rg

__all__ = ["IterationResult", "LoopContext", "loop_status", "run_iteration"]

log = logging.getLogger(__name__)


@dataclass
class LoopContext:
    """What every step may use: the loop file, the store, the runs folder, credentials."""

    config: LoopConfig
    base_dir: Path
    store: Store
    runs_root: Path
    state: LoopState
    env: Mapping[str, str] = field(default_factory=dict)
    client: rg.Argilla | None = None

    def argilla(self) -> rg.Argilla:
        """The Argilla client (connected on first use, from the loop file's URL and the environment's key)."""
        if self.client is None:
            from curate.argilla.client import connect
            from curate.credentials import Credentials

            creds = Credentials.resolve("argilla", url_from_file=self.config.label.url, env=self.env)
            if creds.note:
                log.warning(creds.note)
            self.client = connect(creds.url, creds.key)
        return self.client

    def current_run(self) -> str | None:
        """The run serving now: the last promoted run, else the loop file's ``model``."""
        return self.state.promoted_run() or self.config.model


@dataclass(frozen=True)
class IterationResult:
    """Where a call left the loop."""

    iteration: int | None
    waiting_at: str | None  # the step that waits (``label``), or None when the iteration finished
    message: str
    folder: Path | None = None


def _check_training(ctx: LoopContext) -> None:
    """The training dataset exists and holds the kind of rows the loop's labeled rows take."""
    config = ctx.config
    name, version = ctx.store.resolve(config.training)
    kind, want = ctx.store.kind(f"{name}@{version}"), config.labeled_kind
    if kind != want:
        trains = "a head" if not config.generative else f"method {config.recipe.method}"
        raise ConfigError(
            f"Loop {config.name!r}: the recipe trains {trains} on {want} rows, but the training dataset {name}@{version} "
            f"holds {kind} rows. Point `training` at a {want} dataset, or change the recipe's method."
        )


def _load(loop: LoopConfig | str | Path) -> tuple[LoopConfig, Path]:
    """The config and the folder its relative paths resolve against."""
    if isinstance(loop, LoopConfig):
        return loop, Path(".")
    return load_loop(loop), Path(loop).resolve().parent


def run_iteration(
    loop: LoopConfig | str | Path,
    *,
    loops_root: str | Path = "loops",
    store_root: str | Path = "datasets",
    runs_root: str | Path = "runs",
    env: Mapping[str, str] | None = None,
    client: rg.Argilla | None = None,
) -> IterationResult:
    """Run (or resume) one iteration of a loop, step by step, as far as it can go now.

    Parameters
    ----------
    loop
        The loop file (relative paths in it resolve against its folder), or a validated config.
    loops_root
        Folder of loop state (``loops/<name>/<iteration>/``).
    store_root, runs_root
        Dataset store and folder of run folders.
    env
        Environment to read Argilla credentials from (the CLI passes ``os.environ``); ``None``: none.
    client
        A connected Argilla client; ``None`` connects from ``label.url`` and ``env`` when needed.

    Returns
    -------
    :class:`IterationResult`: finished, waiting for labels, or nothing new to collect.
    """
    store = Store(store_root)
    config, base_dir = _load(loop)
    ctx = LoopContext(config=config, base_dir=base_dir, store=store, runs_root=Path(runs_root),
                      state=LoopState(loops_root, config.name), env=dict(env or {}), client=client)  # fmt: skip
    iteration = ctx.state.open_iteration()
    if iteration is None:
        _check_training(ctx)  # a missing training dataset, or one of another kind, fails before anything is collected
        iteration = ctx.state.new_iteration()
        collected = _steps.collect(ctx, iteration)
        if collected is None:
            return IterationResult(None, None, f"No new production rows for loop {ctx.config.name!r}: nothing to do.")
        iteration.save("collect", collected)
    for step in STEPS[1:]:
        if iteration.done(step):
            continue
        outputs, done = getattr(_steps, step)(ctx, iteration)
        iteration.save(step, outputs, done=done)
        if not done:
            pending = outputs.get("pending", 0)
            return IterationResult(iteration.number, step, f"Iteration {iteration.number}: {pending} records wait "
                                   "for annotators in Argilla; run again once they are answered.", iteration.folder)  # fmt: skip
    gate = iteration.outputs("gate")
    verdict = "promoted" if gate.get("promoted") else "not promoted"
    return IterationResult(iteration.number, None, f"Iteration {iteration.number} finished: run {gate.get('run')} "
                           f"{verdict}. Report: {iteration.folder / 'report.md'}", iteration.folder)  # fmt: skip


def _row(iteration: IterationState) -> dict[str, Any]:
    select = iteration.outputs("select").get("counts", {})
    label = iteration.record("label") or {}
    gate = iteration.outputs("gate")
    return {
        "iteration": iteration.number,
        "next_step": iteration.next_step or "finished",
        "collected": iteration.outputs("collect").get("rows"),
        "selected": select.get("selected"),
        "pushed": iteration.outputs("push").get("created"),
        "pending": (label.get("outputs") or {}).get("pending"),
        "labeled": iteration.outputs("merge").get("labeled_rows"),
        "run": iteration.outputs("train").get("run"),  # the run this iteration trained
        "promoted": gate.get("promoted"),
    }


def loop_status(loop: LoopConfig | str | Path, *, loops_root: str | Path = "loops") -> pl.DataFrame:
    """One row per iteration: the next step, rows collected / selected / pushed / pending / labeled, the run it
    trained and whether the gate promoted it."""
    config, _ = _load(loop)
    rows = [_row(i) for i in LoopState(loops_root, config.name).iterations()]
    schema = {"iteration": pl.Int64, "next_step": pl.String, "collected": pl.Int64, "selected": pl.Int64,
              "pushed": pl.Int64, "pending": pl.Int64, "labeled": pl.Int64, "run": pl.String, "promoted": pl.Boolean}  # fmt: skip
    return pl.DataFrame(rows, schema=schema)

