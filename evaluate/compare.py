"""``curate compare``: two runs side by side on the same held-out rows, with paired intervals."""

from __future__ import annotations

from pathlib import Path

from .config import EvaluateConfig
from .models import resolve_target
from .results import EvalResult
from .output import compare_folder, save_result
from .run import eval_run

__all__ = ["compare_runs"]


def compare_runs(
    run_a: str | Path,
    run_b: str | Path,
    *,
    config: EvaluateConfig | None = None,
    store_root: str | Path = "datasets",
    runs_root: str | Path = "runs",
    out_dir: str | Path | None = None,
    device: str | None = None,
    save: bool = True,
) -> EvalResult:
    """Evaluate ``run_a`` with ``run_b`` as its baseline: every metric for both, and A - B with a paired interval.

    Parameters
    ----------
    run_a, run_b
        Runs (folders or ids) or model folders. Rows that were in either run's train split are refused.
    config
        Metrics and settings; its ``baseline`` is replaced by ``run_b``. ``dataset: None`` uses
        the version ``run_a`` was trained on.
    store_root, runs_root, device
        As for :func:`~.run.eval_run`.
    out_dir
        Where ``<dataset@N>.json/.md/.html`` go; ``None`` means ``runs/<a>/eval/vs-<b>/``
        (:func:`~.output.compare_folder`; the manifests are left alone: a comparison is not a
        run's own evaluation).
    save
        Write the files; ``False`` only returns the result.
    """
    config = (config or EvaluateConfig()).model_copy(update={"baseline": str(run_b)})
    result = eval_run(run_a, config=config, store_root=store_root, runs_root=runs_root, device=device, save=False)
    a, b = resolve_target(run_a, runs_root=runs_root), resolve_target(run_b, runs_root=runs_root)
    if a.trained_on and b.trained_on and a.trained_on.split("@")[0] != b.trained_on.split("@")[0]:
        result.notes.append(f"The runs were trained on different datasets: {a.trained_on} and {b.trained_on}.")
    if save:
        folder = compare_folder(run_dir=a.run_dir, model=a.name, other=b.name, out_dir=out_dir)
        save_result(result, folder, worst=config.worst_examples)
    return result
