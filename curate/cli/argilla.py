"""`curate argilla serve`: the real argilla-server on this machine (SQLite, no Docker)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from curate.argilla.server import DEFAULT_DATA_DIR, DEFAULT_VENV, start_server, stop_server

app = typer.Typer(help="Run a local Argilla server for labeling.", no_args_is_help=True)
console = Console()


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 6900,
    data_dir: Annotated[Path, typer.Option(help="SQLite database, logs and temp files.")] = DEFAULT_DATA_DIR,
    venv: Annotated[Path, typer.Option(help="The server's own virtualenv (created on first use).")] = DEFAULT_VENV,
    detach: Annotated[bool, typer.Option("--detach", help="Run in the background; stop with --stop.")] = False,
    stop: Annotated[bool, typer.Option("--stop", help="Stop the server started on --port with --data-dir.")] = False,
    username: Annotated[str, typer.Option(help="Owner user name.")] = "argilla",
    workspace: Annotated[str, typer.Option(help="Workspace created for the owner.")] = "argilla",
    api_key: Annotated[
        str | None,
        typer.Option(envvar="ARGILLA_API_KEY", help="Owner API key (env ARGILLA_API_KEY); generated if unset."),
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(envvar="ARGILLA_PASSWORD", help="Owner password for the web UI (env ARGILLA_PASSWORD)."),
    ] = None,
) -> None:
    """Start (or --stop) the real argilla-server 2.8 with its web UI on 127.0.0.1."""
    if stop:
        stopped = stop_server(port=port, data_dir=data_dir)
        console.print(f"stopped the server on port {port}" if stopped else f"no curate Argilla server on port {port}")
        return
    given = api_key is not None
    api_key = api_key or secrets.token_urlsafe(24)
    password = password or secrets.token_urlsafe(12)
    handle = start_server(
        port=port,
        data_dir=data_dir,
        venv=venv,
        username=username,
        password=password,
        api_key=api_key,
        workspace=workspace,
        reset_credentials=given,
        detach=detach,
    )
    console.print(
        f"[green]Argilla[/] is up at {handle.url} (owner {username!r}, workspace {workspace!r}, data {data_dir})"
    )
    if handle.owner_created or given:
        console.print(f"  export ARGILLA_API_URL={handle.url}\n  export ARGILLA_API_KEY={api_key}")
        console.print(f"  web UI sign-in: {username} / {password}")
        if not given:
            console.print("  (generated now and shown once: keep them)")
    else:
        console.print(
            "  the owner already exists: use the API key printed when it was created, "
            "or set ARGILLA_API_KEY (and ARGILLA_PASSWORD) to reset it"
        )
    if detach:
        console.print(
            f"  running in the background (pid {handle.pid}, log {handle.log_file}); "
            f"stop with `curate argilla serve --stop --port {port}`"
        )
        return
    handle.wait()
