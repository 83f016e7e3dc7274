"""`curate loop ...`: the active-learning loop, and `curate loop simulate` to choose its strategy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import click
import typer
from typer.core import TyperGroup
from rich.console import Console
from rich.markdown import Markdown

from curate.cli.options import DEFAULT_STORE, StoreOption

class _LoopGroup(TyperGroup):
    """``curate loop LOOP.yaml`` is ``curate loop run LOOP.yaml``: a YAML file (or any file) in place of a command runs it."""

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands and (args[0].endswith((".yaml", ".yml")) or Path(args[0]).is_file()):
            args = ["run", *args]
        return super().resolve_command(ctx, args)


app = typer.Typer(help="The active-learning loop: select, label, retrain, evaluate.", no_args_is_help=True, cls=_LoopGroup)
console = Console()


@app.command("simulate")
def simulate(
    sim: Annotated[
        Path, typer.Argument(help="Simulation YAML (pool, test, recipe, strategies, schedule).", exists=True, dir_okay=False)
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for curves.csv, curves.svg, summary.md.")],
    store: StoreOption = DEFAULT_STORE,
) -> None:
    """Replay select -> train -> evaluate with gold labels from a labeled pool, per strategy and seed."""
    from curate.loop.simulate import simulate as run_simulation
    from curate.store import Store

    result = run_simulation(sim, out=out, cache_dir=Store(store).cache_dir("embeddings"), console=console)
    console.print(Markdown(result.summary))
    rows = result.curves.height
    console.print(f"[green]wrote[/] {out}/curves.csv ({rows} rows), curves.svg, summary.md ({result.seconds:.0f}s)")


LoopFile = Annotated[Path, typer.Argument(help="Loop YAML (training dataset, model, collect, budget, recipe).", exists=True, dir_okay=False)]
LoopsOption = Annotated[Path, typer.Option("--loops", help="Folder of loop state (loops/<name>/<iteration>/).")]
RunsOption = Annotated[Path, typer.Option("--runs", help="Folder of run folders.")]


@app.command("run")
def run(
    loop: LoopFile,
    store: StoreOption = DEFAULT_STORE,
    loops: LoopsOption = Path("loops"),
    runs: RunsOption = Path("runs"),
) -> None:
    """Run or resume one iteration: collect, select, propose, push, label, merge, train, gate."""
    import os

    from curate.loop.iteration import run_iteration

    result = run_iteration(loop, loops_root=loops, store_root=store, runs_root=runs, env=os.environ)
    console.print(("[yellow]" if result.waiting_at else "[green]") + result.message)


@app.command("status")
def status(loop: LoopFile, loops: LoopsOption = Path("loops")) -> None:
    """Where each iteration stands: next step, rows collected / selected / pending / labeled, run, decision."""
    from rich.table import Table

    from curate.loop.iteration import loop_status

    frame = loop_status(loop, loops_root=loops)
    if frame.height == 0:
        console.print(f"No iterations under {loops} yet: run `curate loop run {loop}`.")
        return
    table = Table(*frame.columns)
    for row in frame.iter_rows():
        table.add_row(*["" if v is None else str(v) for v in row])
    console.print(table)
