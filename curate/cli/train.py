"""`curate train`, `curate runs list | show` and `curate export`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from curate.cli.evaluate import print_evaluation
from curate.cli.options import DEFAULT_STORE, StoreOption

runs_app = typer.Typer(help="Training runs and their manifests.", no_args_is_help=True)
console = Console()

RunsRoot = Annotated[Path, typer.Option("--runs", help="Folder of run folders.")]


def train(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML.", exists=True, dir_okay=False)],
    dataset: Annotated[str | None, typer.Option("--dataset", help="Dataset version NAME@N (overrides the recipe).")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Base model folder or hub id (overrides the recipe).")] = None,
    output: Annotated[Path | None, typer.Option("--output", help="Folder of run folders (default: the recipe's, runs/).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the last unfinished run of this recipe from its checkpoint.")] = False,
    store: StoreOption = DEFAULT_STORE,
) -> None:
    """Train from a dataset version; writes runs/<run-id>/ with the model or adapter and manifest.json.

    With an `evaluate:` block in the recipe, the new run is evaluated right after.
    """
    from curate.orchestrate import train_and_evaluate

    result, evaluation = train_and_evaluate(recipe, dataset=dataset, model=model, output=output, store_root=store, resume=resume)
    if not result.is_main:  # another process of an `accelerate launch`: the main one reports
        return
    m = result.metrics
    measured = m.get("train_sample_loss_before") is not None and m.get("train_sample_loss_after") is not None  # none before on --resume
    loss = f"train-sample loss {m['train_sample_loss_before']:.4f} -> {m['train_sample_loss_after']:.4f}, " if measured else ""
    console.print(f"[green]run[/] {result.path}: {result.manifest['dataset']['ref']}, {loss}{m.get('global_step')} steps")
    if evaluation is not None:
        print_evaluation(evaluation)


@runs_app.command("list")
def list_(root: RunsRoot = Path("runs")) -> None:
    """Runs, newest first: status, method, adapter, dataset version, base model, final loss."""
    from curate.runs import list_runs

    table = Table("run", "status", "method", "adapter", "dataset", "base model", "loss", "created")
    for r in list_runs(root):
        loss = r.metrics.get("train_sample_loss_after") or r.metrics.get("train_loss_last")
        table.add_row(r.run_id, r.status, r.method, r.adapter, r.dataset, Path(r.base_model).name, f"{loss:.4f}" if loss else "", r.created)
    console.print(table)


@runs_app.command("show")
def show(run: Annotated[str, typer.Argument(help="Run id (under --runs) or run folder.")], root: RunsRoot = Path("runs")) -> None:
    """The manifest of one run as JSON."""
    from curate.runs import show_run

    manifest = show_run(run, root=root)
    manifest.get("metrics", {}).pop("train_loss_history", None)
    console.print_json(json.dumps(manifest, default=str))


def export(
    run: Annotated[str, typer.Argument(help="Run id (under --runs) or run folder.")],
    merge: Annotated[bool, typer.Option("--merge/--no-merge", help="Merge a PEFT adapter into the base weights.")] = True,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Target folder (default runs/<id>/export).")] = None,
    root: RunsRoot = Path("runs"),
) -> None:
    """Write a standalone checkpoint of a run (a LoRA merged into its base with --merge)."""
    from curate.train.export import export_run

    console.print(f"[green]exported[/] {export_run(run, out=out, merge=merge, root=root)}")
