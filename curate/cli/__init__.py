"""The `curate` command line. Commands are thin: parse, call one library function, print."""

from __future__ import annotations

import logging
import sys

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from curate.cli import argilla, cache, datasets, evaluate, label, loop, run
from curate.cli import serve as serve_cli
from curate.cli import train as train_cli
from curate.errors import CurateError
from curate.extras import missing_extra

__all__ = ["app", "main"]

app = typer.Typer(
    name="curate",
    help="Curate fine-tuning data into versioned datasets, then train and evaluate from them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("run")(run.run)
app.command("schema")(run.schema)
app.add_typer(datasets.app, name="datasets")
app.command("eval")(evaluate.eval_)
app.command("compare")(evaluate.compare)
app.add_typer(argilla.app, name="argilla")
app.add_typer(label.app, name="label")
app.command("train")(train_cli.train)
app.add_typer(train_cli.runs_app, name="runs")
app.command("export")(train_cli.export)
app.command("serve")(serve_cli.serve)
app.add_typer(loop.app, name="loop")
app.add_typer(cache.app, name="cache")


def main() -> None:
    """Console entry point: logging to stderr; curate errors and missing extras as one clear message and exit 1."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s", handlers=[RichHandler(show_path=False)])
    try:
        app()
    except CurateError as exc:
        _fail(exc)
    except Exception as exc:
        command = next((a for a in sys.argv[1:] if not a.startswith("-")), None)
        missing = missing_extra(exc, command=command)
        if missing is None:
            raise
        _fail(missing)


def _fail(exc: Exception) -> None:
    # escaped: rich would read `curate[train]` in a message as a style tag and drop it
    Console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, markup=True, soft_wrap=True)
    sys.exit(1)
