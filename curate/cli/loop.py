"""`curate loop ...`: the active-learning loop, and `curate loop simulate` to choose its strategy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markdown import Markdown

from curate.cli.options import DEFAULT_STORE, StoreOption

app = typer.Typer(help="The active-learning loop: select, label, retrain, evaluate.", no_args_is_help=True)
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
