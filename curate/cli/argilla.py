"""`curate argilla serve`: the real argilla-server on this machine (SQLite, no Docker)."""

from __future__ import annotations

import os
import secrets
import shlex
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from curate.argilla._private import OwnerSecretFiles, keep_owner_secrets
from curate.argilla.server import DEFAULT_DATA_DIR, DEFAULT_VENV, start_server, stop_server
from curate.credentials import flag_warning

app = typer.Typer(help="Run a local Argilla server for labeling.", no_args_is_help=True)
console = Console()
errors = Console(stderr=True)


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
        typer.Option(help="Owner API key; prefer ARGILLA_API_KEY (a flag shows in `ps`). Generated if neither is set."),
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(help="Owner password for the web UI; prefer ARGILLA_PASSWORD (a flag shows in `ps`)."),
    ] = None,
) -> None:
    """Start (or --stop) the real argilla-server 2.8 with its web UI on 127.0.0.1."""
    if stop:
        stopped = stop_server(port=port, data_dir=data_dir)
        console.print(f"stopped the server on port {port}" if stopped else f"no curate Argilla server on port {port}")
        return
    flags = (("--api-key", api_key, "ARGILLA_API_KEY"), ("--password", password, "ARGILLA_PASSWORD"))
    for flag, value, variable in flags:
        if value:
            errors.print(f"[yellow]warning:[/] {flag_warning(flag, variable)}", highlight=False)
    given_key = api_key or os.environ.get("ARGILLA_API_KEY") or None
    given_password = password or os.environ.get("ARGILLA_PASSWORD") or None
    reset = bool(given_key or given_password)
    key, pw = given_key or secrets.token_urlsafe(24), given_password or secrets.token_urlsafe(12)
    handle = start_server(
        port=port,
        data_dir=data_dir,
        venv=venv,
        username=username,
        password=pw,
        api_key=key,
        workspace=workspace,
        reset_credentials=reset,
        detach=detach,
    )
    kept = keep_owner_secrets(
        handle.data_dir,
        applied=handle.owner_created or reset,
        generated_key=None if given_key else key,
        generated_password=None if given_password else pw,
    )
    console.print(
        f"[green]Argilla[/] is up at {handle.url} (owner {username!r}, workspace {workspace!r}, data {data_dir})"
    )
    how = _how_to_connect(handle.url, username, kept, key_given=bool(given_key), pw_given=bool(given_password))
    console.print(how, markup=False, highlight=False, soft_wrap=True)
    if detach:
        console.print(
            f"  running in the background (pid {handle.pid}, log {handle.log_file}); "
            f"stop with `curate argilla serve --stop --port {port}`"
        )
        return
    handle.wait()


def _how_to_connect(url: str, username: str, kept: OwnerSecretFiles, *, key_given: bool, pw_given: bool) -> str:
    """How to point clients at the server, naming the variables and where secrets are, never the secrets."""
    if key_given:
        key = "  export ARGILLA_API_KEY=<your key>      # the key you set; not shown"
    elif kept.key_file:
        path = shlex.quote(str(kept.key_file))
        key = f'  export ARGILLA_API_KEY="$(cat {path})"      # generated; kept only in that file (mode 0600)'
    else:
        key = "  export ARGILLA_API_KEY=<the owner's key>  # the owner already exists; set ARGILLA_API_KEY to reset it"
    if pw_given:
        sign_in = "the password you set"
    elif kept.password_file:
        sign_in = f"the password in {kept.password_file}"
    else:
        sign_in = "the password set when the owner was created (set ARGILLA_PASSWORD to reset it)"
    return f"  export ARGILLA_API_URL={url}\n{key}\n  web UI sign-in: {username} / {sign_in}"
