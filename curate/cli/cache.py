"""`curate cache clear`: empty the per-stage cache that `curate run --resume` reads."""

from __future__ import annotations

import typer
from rich.console import Console

from curate.cli.options import DEFAULT_STORE, StoreOption
from curate.stage_cache import cache_dir, clear_cache

app = typer.Typer(help="The per-stage cache `curate run --resume` reads.", no_args_is_help=True)
console = Console()


@app.command("clear")
def clear(store: StoreOption = DEFAULT_STORE) -> None:
    """Delete every cached stage result under STORE/_cache/stages (committed versions stay)."""
    removed = clear_cache(store)
    console.print(f"cleared {removed} cached stage result(s) from {cache_dir(store)}")
