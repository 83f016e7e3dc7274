"""`curate datasets list | log | show | report | card | diff | export | vacuum`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

from curate.catalog import dataset_log, export_dataset, list_datasets, show_dataset
from curate.cli.options import DEFAULT_STORE, StoreOption
from curate.report import dataset_card, diff_versions, export_folder, write_dataset_report
from curate.report.diff import render_diff_html, render_diff_text
from curate.store import DEFAULT_RETENTION_HOURS, Store

app = typer.Typer(help="Inspect and export versioned datasets.", no_args_is_help=True)
console = Console()


@app.command("list")
def list_(store: StoreOption = DEFAULT_STORE) -> None:
    """Datasets in the store with their latest version (a broken one is listed with the reason)."""
    table = Table("name", "latest", "kind", "kept", "removed", "time")
    datasets = list_datasets(Store(store))
    for d in datasets:
        if d.broken:
            table.add_row(d.name, "[red]broken[/]", "", "", "", "")
        else:
            table.add_row(d.name, f"@{d.latest}", d.kind, str(d.kept), str(d.removed), d.time)
    console.print(table)
    for d in datasets:
        if d.broken:
            console.print(f"[red]broken:[/] {d.broken}", highlight=False, soft_wrap=True)


@app.command()
def log(name: Annotated[str, typer.Argument(help="Dataset name.")], store: StoreOption = DEFAULT_STORE) -> None:
    """Versions of a dataset, newest first: time, pipeline, parents and inputs, per-stage counts."""
    for v in dataset_log(Store(store), name):
        lin = v.lineage
        pipe = lin.get("pipeline", {})
        console.print(f"[bold]{name}@{v.version}[/]  {v.time.isoformat(timespec='seconds')}  kind={lin.get('kind')}")
        console.print(f"  pipeline: {pipe.get('path')} (sha256 {str(pipe.get('sha256'))[:12]})")
        for change in lin.get("kind_changes", []):
            console.print(f"  kind:     {change['from']} -> {change['to']} (stage {change['stage']})")
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
def show(
    ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION.")],
    html: Annotated[Path | None, typer.Option("--html", help="Also write the HTML report (as `datasets report`) here.")] = None,
    store: StoreOption = DEFAULT_STORE,
) -> None:
    """Counts of one version per split and label, and removed rows per stage and reason."""
    if html is not None:
        console.print(f"wrote {write_dataset_report(Store(store), ref, html)}", highlight=False)
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
def report(
    ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output HTML file.")] = Path("report.html"),
    store: StoreOption = DEFAULT_STORE,
) -> None:
    """One offline HTML page of what curation did: funnel, labels, lengths, duplicates, decontamination, lineage."""
    console.print(f"wrote {write_dataset_report(Store(store), ref, out)}", highlight=False)


LicenseOption = Annotated[str, typer.Option("--license", help="License id for the card's front matter.")]


@app.command()
def card(
    ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the card here (default: print it).")] = None,
    license: LicenseOption = "other",
    store: StoreOption = DEFAULT_STORE,
) -> None:
    """A Hugging Face dataset card (README.md with YAML front matter) with the curation summary."""
    text = dataset_card(Store(store), ref, license=license)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {out}", highlight=False)


@app.command()
def diff(
    a: Annotated[str, typer.Argument(help="The old version, NAME@VERSION.")],
    b: Annotated[str, typer.Argument(help="The new version, NAME@VERSION.")],
    html: Annotated[Path | None, typer.Option("--html", help="Also write the diff as an HTML page here.")] = None,
    limit: Annotated[int, typer.Option(help="Rows listed per change; 0 lists all.")] = 50,
    store: StoreOption = DEFAULT_STORE,
) -> None:
    """Rows added, removed and moved between splits from A to B, by content id, with B's stage and reason."""
    result = diff_versions(Store(store), a, b)
    typer.echo(render_diff_text(result, limit=limit or None), nl=False)
    if html is not None:
        html.write_text(render_diff_html(result), encoding="utf-8")
        console.print(f"wrote {html}", highlight=False)


@app.command()
def export(
    ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output JSONL file, or folder for parquet / hf.")],
    format: Annotated[
        Literal["messages", "alpaca", "sharegpt", "hh_rlhf", "kto", "parquet", "hf"],
        typer.Option(help="JSONL format, or a folder `datasets` reads: parquet (load_dataset) or hf (load_from_disk)."),
    ] = "messages",
    split: Annotated[str | None, typer.Option(help="Only this split (train/validation/test); JSONL only.")] = None,
    license: LicenseOption = "other",
    store: StoreOption = DEFAULT_STORE,
) -> None:
    """Export the kept rows of a version to a JSONL file, or to a folder with a dataset card."""
    if format in ("parquet", "hf"):
        counts = export_folder(Store(store), ref, out, format=format, license=license)
        console.print(f"wrote {', '.join(f'{s} {n}' for s, n in counts.items())} rows to {out}", highlight=False)
        return
    n = export_dataset(Store(store), ref, format=format, path=out, split=split)
    console.print(f"wrote {n} rows to {out}")


@app.command()
def vacuum(
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    yes: Annotated[bool, typer.Option("--yes", "--force", help="Delete the files (default: only list them).")] = False,
    retention_hours: Annotated[
        int,
        typer.Option(
            "--retention-hours", help="Only files older than this many hours; below 168 needs --allow-short-retention."
        ),
    ] = DEFAULT_RETENTION_HOURS,
    allow_short_retention: Annotated[
        bool,
        typer.Option("--allow-short-retention", help="Accept a retention below 168 hours (no run may be writing it)."),
    ] = False,
    store: StoreOption = DEFAULT_STORE,
) -> None:
    """List (or with --yes delete) part files no version of a dataset references, e.g. after a killed run."""
    result = Store(store).vacuum(
        name, retention_hours=retention_hours, delete=yes, allow_short_retention=allow_short_retention
    )
    for file in result.files:
        console.print(f"  {result.folder / file}", highlight=False)
    older = f"older than {result.retention_hours} hours"
    if result.deleted:
        console.print(f"deleted {len(result.files)} unreferenced files {older} from {name}")
    else:
        console.print(f"{len(result.files)} unreferenced files {older} in {name} (dry run; --yes deletes them)")
