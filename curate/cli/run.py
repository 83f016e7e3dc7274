"""`curate run` and `curate schema`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from curate.cli.evaluate import print_evaluation
from curate.cli.options import DEFAULT_STORE, StoreOption
from curate.orchestrate import run as run_pipeline_file
from curate.pipeline import RunSummary
from curate.schema import SCHEMAS_DIR, write_schemas

console = Console()


def summary_table(summary: RunSummary) -> Table:
    """Per-stage counts of one run as a rich table (reasons one per line, the three largest)."""
    table = Table(title=f"{summary.dataset}@{summary.version} ({summary.kind})", title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
    for column in ("stage", "in", "added", "kept", "removed", "sec"):
        table.add_column(column, justify="left" if column == "stage" else "right", no_wrap=True)
    table.add_column("removed by reason", no_wrap=True)
    for s in summary.stages:
        ranked = sorted(s.removed_by_reason.items(), key=lambda kv: -kv[1])
        reasons = [f"{n} {r}" for r, n in ranked[:3]] + ([f"+{len(ranked) - 3} more"] if len(ranked) > 3 else [])
        table.add_row(
            s.stage, str(s.rows_in), str(s.rows_added), str(s.rows_kept), str(s.rows_removed), f"{s.seconds:.2f}",
            "\n".join(reasons),
        )
    return table


def run(
    pipeline: Annotated[Path, typer.Argument(help="Pipeline YAML file.", exists=True, dir_okay=False)],
    store: StoreOption = DEFAULT_STORE,
    benchmarks: Annotated[
        Path | None,
        typer.Option(
            "--benchmarks",
            envvar="CURATE_BENCHMARKS",
            help="Folder of benchmark files for `decontaminate` (env CURATE_BENCHMARKS); default: a "
            "shared/data folder above the pipeline file.",
        ),
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option("--engine", help="Where stages run: `local` or `ray` (default: the pipeline's `engine`, else local)."),
    ] = None,
    address: Annotated[
        str | None,
        typer.Option("--address", help="Ray cluster address for `--engine ray` (default: the pipeline's `ray_address`, else a local cluster)."),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Reuse the stages a failed or killed run of the same inputs and config finished "
                     "(cached under STORE/_cache/stages; `curate cache clear` empties it)."),
    ] = False,
) -> None:
    """Run a pipeline and commit one new version of its output dataset (then train, with a `train:` block)."""
    result = run_pipeline_file(pipeline, store_root=store, benchmarks_dir=benchmarks, env=os.environ, console=console,
                               engine=engine, address=address, resume=resume)
    if not result.is_main:  # another process of an `accelerate launch`: the main one curated and reports
        return
    summary = result.summary
    console.print(summary_table(summary))
    splits = ", ".join(f"{k} {v}" for k, v in summary.rows_per_split.items())
    console.print(f"[green]committed[/] {summary.dataset}@{summary.version} in {store}: {splits} ({summary.seconds:.1f}s)")
    if result.training is not None:
        console.print(f"[green]trained[/] {result.training.path} on {result.training.manifest['dataset']['ref']}")
    if result.evaluation is not None:
        print_evaluation(result.evaluation)


def schema(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the JSON Schemas into.")] = SCHEMAS_DIR,
) -> None:
    """Regenerate the JSON Schemas of the config files (editors autocomplete pipeline YAML)."""
    for path in write_schemas(out):
        console.print(f"wrote {path}")
