"""Where evaluation output goes: the one rule ``curate eval``, ``compare``, lm-eval and the reports follow.

.. code-block:: text

    runs/<id>/eval/<name@N>.json|.md|.html            curate eval of a run (test split)
    runs/<id>/eval/<name@N>.<split>.json|...           another split
    runs/<id>/eval/vs-<other>/<name@N>.json|...        curate compare <id> <other>
    runs/<id>/eval/lm_eval/<task>.json                 lm-eval tasks
    eval/<model folder name>/...                       the same for a plain model folder / hub id

An explicit ``out_dir`` replaces the folder (the file names stay the same).
"""

from __future__ import annotations

import logging
from pathlib import Path

from curate.errors import CurateError
from curate.runs import record_evaluation

from .results import EvalResult

__all__ = ["compare_folder", "eval_folder", "lm_eval_folder", "output_stem", "report_path", "save_result"]

log = logging.getLogger(__name__)


def output_stem(dataset: str, split: str) -> str:
    """File stem of a result: ``support@3`` for the test split, ``support@3.validation`` otherwise."""
    return dataset if split == "test" else f"{dataset}.{split}"


def eval_folder(*, run_dir: str | Path | None, model: str | Path, out_dir: str | Path | None = None) -> Path:
    """``out_dir`` when given, else ``runs/<id>/eval`` for a run and ``eval/<model folder name>`` for a model."""
    if out_dir is not None:
        return Path(out_dir)
    return Path(run_dir) / "eval" if run_dir else Path("eval") / Path(str(model)).name


def compare_folder(*, run_dir: str | Path | None, model: str | Path, other: str, out_dir: str | Path | None = None) -> Path:
    """``out_dir`` when given, else ``vs-<other>/`` in the first model's eval folder."""
    home = eval_folder(run_dir=run_dir, model=model)
    return Path(out_dir) if out_dir is not None else home / f"vs-{Path(other).name}"


def lm_eval_folder(*, run_dir: str | Path | None, model: str | Path, out_dir: str | Path | None = None) -> Path:
    """``out_dir`` when given, else ``lm_eval/`` in the model's eval folder."""
    return Path(out_dir) if out_dir is not None else eval_folder(run_dir=run_dir, model=model) / "lm_eval"


def report_path(result: EvalResult, *, out_dir: str | Path | None = None) -> Path:
    """Where :func:`save_result` writes ``result``, without a suffix (add ``.json``, ``.md`` or ``.html``)."""
    folder = eval_folder(run_dir=result.run, model=result.model, out_dir=out_dir)
    return folder / output_stem(result.dataset, result.split)


def save_result(result: EvalResult, folder: Path, *, worst: int, record: bool = False) -> Path:
    """Write ``<stem>.json``, ``.md`` and ``.html`` into ``folder``; returns the JSON path.

    With ``record``, the headline numbers also go under ``evaluation.<stem>`` in the manifest of
    ``result.run`` (a run's own evaluation; comparisons are not recorded).
    """
    from .report import write_report

    stem = output_stem(result.dataset, result.split)
    path = result.save(folder / f"{stem}.json")
    write_report(result, folder, stem=stem, worst=worst)
    log.info("wrote %s", path)
    if record and result.run is not None:
        summary = result.summary() | {"dataset": stem, "result": str(path)}
        try:
            record_evaluation(Path(result.run), summary)
        except CurateError as exc:  # the result files are written; a manifest problem must say so, not hide them
            raise CurateError(f"Evaluation written to {path}, but the run's manifest could not be updated: {exc}") from exc
    return path
