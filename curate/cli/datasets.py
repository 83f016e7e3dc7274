"""`curate datasets list | log | show | export`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

from curate.catalog import dataset_log, export_dataset, list_datasets, show_dataset
from curate.cli.options import DEFAULT_STORE, StoreOption
from curate.store import Store

app = typer.Typer(help="Inspect and export versioned datasets.", no_args_is_help=True)
console = Console()


@app.command("list")
def list_(store: StoreOption = DEFAULT_STORE) -> None:
    """Datasets in the store with their latest version."""
    table = Table("name", "latest", "kind", "kept", "removed", "time")
    for d in list_datasets(Store(store)):
        table.add_row(d.name, f"@{d.latest}", d.kind, str(d.kept), str(d.removed), d.time)
    console.print(table)


@app.command()
def log(name: Annotated[str, typer.Argument(help="Dataset name.")], store: StoreOption = DEFAULT_STORE) -> None:
    """Versions of a dataset, newest first: time, pipeline, parents and inputs, per-stage counts."""
    for v in dataset_log(Store(store), name):
        lin = v.lineage
        pipe = lin.get("pipeline", {})
        console.print(f"[bold]{name}@{v.version}[/]  {v.time.isoformat(timespec='seconds')}  kind={lin.get('kind')}")
        console.print(f"  pipeline: {pipe.get('path')} (sha256 {str(pipe.get('sha256'))[:12]})")
        for p in lin.get("parents", []):
            console.print(f"  parent:   {p['dataset']}@{p['version']} ({p.get('rows')} rows)")
        for f in lin.get("inputs", []):
            console.print(f"  input:    {f['path']} (sha256 {f['sha256'][:12]})")
        rows = lin.get("rows", {})
        console.print(f"  rows:     {rows.get('input')} in, {rows.get('kept')} kept, {rows.get('removed')} removed")
        stages = Table("stage", "in", "kept", "removed", "reasons", box=None, padding=(0, 2), show_edge=False)
        for s in v.stages:
            reasons = ", ".join(f"{r}={n}" for r, n in s.removed_by_reason.items())
            stages.add_row(s.stage, str(s.rows_in), str(s.rows_kept), str(s.rows_removed), reasons)
        console.print(stages)
        console.print()


@app.command()
def show(ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION.")], store: StoreOption = DEFAULT_STORE) -> None:
    """Counts of one version per split and label, and removed rows per stage and reason."""
    o = show_dataset(Store(store), ref)
    console.print(f"[bold]{o.info.name}@{o.info.version}[/] ({o.info.lineage.get('kind')})")
    splits = Table("split", "rows", title="kept rows per split", title_justify="left")
    for split, n in o.per_split.items():
        splits.add_row(split, str(n))
    console.print(splits)
    if o.per_label:
        names = list(o.per_split)
        labels = Table("label", *names, title="kept rows per label", title_justify="left")
        for label, counts in o.per_label.items():
            labels.add_row(label, *(str(counts.get(s, 0)) for s in names))
        console.print(labels)
    removed = Table("stage", "reason", "rows", title="removed rows", title_justify="left")
    for stage, reason, n in o.removed:
        removed.add_row(stage, reason, str(n))
    console.print(removed)


@app.command()
def export(
    ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output JSONL file.")],
    format: Annotated[Literal["messages", "alpaca", "sharegpt"], typer.Option(help="Output format.")] = "messages",
    split: Annotated[str | None, typer.Option(help="Only this split (train/validation/test).")] = None,
    store: StoreOption = DEFAULT_STORE,
) -> None:
    """Export the kept rows of a version to a JSONL file."""
    n = export_dataset(Store(store), ref, format=format, path=out, split=split)
    console.print(f"wrote {n} rows to {out}")
