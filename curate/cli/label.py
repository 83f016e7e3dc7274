"""`curate label push | pull`: preference pairs to Argilla and annotators' choices back."""

from __future__ import annotations

import os
from typing import Annotated, Literal

import typer
from rich.console import Console

from curate.argilla.pull import pull as pull_answers
from curate.argilla.push import push as push_pairs
from curate.cli.options import DEFAULT_STORE, StoreOption
from curate.credentials import Credentials, flag_warning
from curate.store import Store

app = typer.Typer(help="Label preference pairs in Argilla.", no_args_is_help=True)
console = Console()

ApiUrl = Annotated[
    str | None, typer.Option(help="Argilla server; default: ARGILLA_API_URL, else http://127.0.0.1:6900.")
]
ApiKey = Annotated[
    str | None, typer.Option(help="Owner/admin API key; prefer ARGILLA_API_KEY (a flag shows in `ps`).")
]
Workspace = Annotated[str, typer.Option(help="Argilla workspace.")]


@app.command()
def push(
    ref: Annotated[str, typer.Argument(help="Preference dataset NAME or NAME@VERSION.")],
    api_key: ApiKey = None,
    api_url: ApiUrl = None,
    workspace: Workspace = "argilla",
    dataset_name: Annotated[str | None, typer.Option(help="Argilla dataset; default: NAME.")] = None,
    question: Annotated[
        Literal["label", "ranking"], typer.Option(help="A/B/tie/both-bad label, or a ranking.")
    ] = "label",
    store: StoreOption = DEFAULT_STORE,
) -> None:
    """Create (or reuse) an Argilla dataset and add the version's pairs that are not there yet."""
    creds = _credentials(api_url, api_key)
    r = push_pairs(
        Store(store),
        ref,
        api_url=creds.url,
        api_key=creds.key,
        workspace=workspace,
        dataset=dataset_name,
        question=question,
    )
    console.print(
        f"pushed {r.ref} to {r.url} {r.workspace}/{r.dataset}: {r.created} new records, {r.existing} already there"
    )


@app.command()
def pull(
    dataset: Annotated[str, typer.Argument(help="Argilla dataset name.")],
    into: Annotated[str, typer.Option(help="Preference dataset to write a new version of.")],
    api_key: ApiKey = None,
    api_url: ApiUrl = None,
    workspace: Workspace = "argilla",
    store: StoreOption = DEFAULT_STORE,
) -> None:
    """Turn submitted answers into a new preference version (majority vote; ties etc. removed)."""
    creds = _credentials(api_url, api_key)
    r = pull_answers(Store(store), dataset, into=into, api_url=creds.url, api_key=creds.key, workspace=workspace)
    reasons = ", ".join(f"{k} {v}" for k, v in r.removed_by_reason.items()) or "none"
    console.print(
        f"[green]committed[/] {r.dataset}@{r.version}: {r.kept} pairs kept, removed: {reasons}; "
        f"{r.answered} records answered, {r.pending} still pending"
    )


def _credentials(api_url: str | None, api_key: str | None) -> Credentials:
    if api_key:
        warning = flag_warning("--api-key", "ARGILLA_API_KEY")
        Console(stderr=True).print(f"[yellow]warning:[/] {warning}", highlight=False)
    return Credentials.resolve("argilla", url_from_cli=api_url, key_from_cli=api_key, env=os.environ)
