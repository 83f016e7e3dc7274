"""`curate eval` and `curate compare`: held-out evaluation of runs against their base or each other."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from curate.cli.options import DEFAULT_STORE, StoreOption
from curate.errors import ConfigError

console = Console()

RunsOption = Annotated[Path, typer.Option("--runs", help="Folder holding run folders (run ids resolve here).")]
DEFAULT_RUNS = Path("runs")


def _config(
    config_file: Path | None,
    *,
    dataset: str | None,
    split: str | None,
    metrics: str | None,
    baseline: str | None,
    max_examples: int | None,
    judge: str | None,
    forgetting: bool | None,
) -> object:
    from curate.evaluate.config import EvaluateConfig
    from curate.yamlfile import load_yaml_model

    base = load_yaml_model(config_file, EvaluateConfig) if config_file else EvaluateConfig()
    data = base.model_dump()
    if dataset:
        data["dataset"] = dataset
    if split:
        data["split"] = split
    if metrics:
        data["metrics"] = [m.strip() for m in metrics.split(",") if m.strip()]
    if baseline is not None:
        data["baseline"] = None if baseline.lower() == "none" else baseline
    if max_examples:
        data["max_examples"] = max_examples
    if judge:
        data["judge"] = {"kind": "reward_model", "model": judge}
    if forgetting is True and data.get("forgetting") is None:
        data["forgetting"] = {}
    elif forgetting is False:
        data["forgetting"] = None
    try:
        return EvaluateConfig.model_validate(data)
    except ValueError as exc:
        raise ConfigError(f"Invalid evaluation options: {exc}") from None


def _print(result: object, where: Path | None) -> None:
    from curate.evaluate.report import format_interval as _ci

    r = result  # EvalResult
    table = Table(title=f"{r.model} on {r.dataset} ({r.split}, {r.n_examples} rows)", title_justify="left")
    table.add_column("metric")
    table.add_column(r.model)
    if r.baseline:
        for col in (f"baseline {r.baseline}", "difference", "verdict"):
            table.add_column(col)
    for m in r.metrics:
        row = [m.name, _ci(m.value, m.low, m.high)]
        if r.baseline:
            row += [_ci(m.baseline, m.baseline_low, m.baseline_high), _ci(m.diff, m.diff_low, m.diff_high), m.verdict]
        table.add_row(*row)
    console.print(table)
    for note in r.notes:
        console.print(f"[yellow]note:[/] {note}")
    if where is not None:
        console.print(f"wrote {where}.json, .md and .html")


def print_evaluation(result: object) -> None:
    """The one line ``curate run`` / ``curate train`` print after evaluating a new run."""
    from curate.evaluate.output import report_path

    r = result  # EvalResult
    console.print(f"[green]evaluated[/] on {r.dataset} {r.split} ({r.n_examples} rows); report in {report_path(r).parent}")


MetricsOption = Annotated[
    str | None, typer.Option("--metrics", help="Comma-separated: loss, exact_match, token_f1, rouge_l, bleu, chrf, "
                             "length_ratio, json_valid, label_accuracy, preference_accuracy, dpo_margin, win_rate.")
]  # fmt: skip
DatasetOption = Annotated[str | None, typer.Option("--dataset", help="NAME@N; default: the version the run was trained on.")]
SplitOption = Annotated[str | None, typer.Option("--split", help="Split to score (default test).")]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="YAML with the fields of an `evaluate:` block.", exists=True, dir_okay=False)
]
JudgeOption = Annotated[str | None, typer.Option("--judge", help="Reward-model run or folder that judges win_rate.")]
MaxOption = Annotated[int | None, typer.Option("--max-examples", help="Score only the first N rows.")]
OutOption = Annotated[Path | None, typer.Option("--out", help="Folder for the JSON and reports (default: the run's eval/).")]


def eval_(
    target: Annotated[str, typer.Argument(help="Run folder, run id, or model folder.")],
    dataset: DatasetOption = None,
    split: SplitOption = None,
    metrics: MetricsOption = None,
    baseline: Annotated[
        str | None, typer.Option("--baseline", help="`base` (default), a run / model folder, or `none`.")
    ] = None,
    judge: JudgeOption = None,
    forgetting: Annotated[
        bool | None, typer.Option("--forgetting/--no-forgetting", help="Run the MT-Bench regression check.")
    ] = None,
    max_examples: MaxOption = None,
    config: ConfigOption = None,
    out: OutOption = None,
    store: StoreOption = DEFAULT_STORE,
    runs: RunsOption = DEFAULT_RUNS,
) -> None:
    """Score a run on the held-out split of a dataset version and compare it with its base model."""
    from curate.evaluate.output import report_path
    from curate.evaluate.run import eval_run

    cfg = _config(config, dataset=dataset, split=split, metrics=metrics, baseline=baseline,
                  max_examples=max_examples, judge=judge, forgetting=forgetting)  # fmt: skip
    result = eval_run(target, config=cfg, store_root=store, runs_root=runs, out_dir=out)
    _print(result, report_path(result, out_dir=out))


def compare(
    run_a: Annotated[str, typer.Argument(help="First run (folder or id).")],
    run_b: Annotated[str, typer.Argument(help="Second run, the baseline of the comparison.")],
    dataset: DatasetOption = None,
    split: SplitOption = None,
    metrics: MetricsOption = None,
    judge: JudgeOption = None,
    max_examples: MaxOption = None,
    config: ConfigOption = None,
    out: OutOption = None,
    store: StoreOption = DEFAULT_STORE,
    runs: RunsOption = DEFAULT_RUNS,
) -> None:
    """Put two runs side by side on the same held-out rows, with paired confidence intervals."""
    from curate.evaluate.compare import compare_runs

    cfg = _config(config, dataset=dataset, split=split, metrics=metrics, baseline=None,
                  max_examples=max_examples, judge=judge, forgetting=False)  # fmt: skip
    result = compare_runs(run_a, run_b, config=cfg, store_root=store, runs_root=runs, out_dir=out)
    _print(result, None)
