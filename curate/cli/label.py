"""`curate label push | pull`: preference pairs to Argilla and annotators' choices back."""

from __future__ import annotations

from typing import Annotated, Literal

import typer
from rich.console import Console

from curate.argilla.pull import pull as pull_answers
from curate.argilla.push import push as push_pairs
from curate.cli.options import DEFAULT_STORE, StoreOption
from curate.store import Store

app = typer.Typer(help="Label preference pairs in Argilla.", no_args_is_help=True)
console = Console()

ApiUrl = Annotated[str, typer.Option(envvar="ARGILLA_API_URL", help="Argilla server (env ARGILLA_API_URL).")]
ApiKey = Annotated[str, typer.Option(envvar="ARGILLA_API_KEY", help="Owner/admin API key (env ARGILLA_API_KEY).")]
Workspace = Annotated[str, typer.Option(help="Argilla workspace.")]


@app.command()
def push(
    ref: Annotated[str, typer.Argument(help="Preference dataset NAME or NAME@VERSION.")],
    api_key: ApiKey,
    api_url: ApiUrl = "http://127.0.0.1:6900",
    workspace: Workspace = "argilla",
    dataset_name: Annotated[str | None, typer.Option(help="Argilla dataset; default: NAME.")] = None,
    question: Annotated[
        Literal["label", "ranking"], typer.Option(help="A/B/tie/both-bad label, or a ranking.")
    ] = "label",
    store: StoreOption = DEFAULT_STORE,
) -> None:
    """Create (or reuse) an Argilla dataset and add the version's pairs that are not there yet."""
    r = push_pairs(
        Store(store),
        ref,
        api_url=api_url,
        api_key=api_key,
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
    api_key: ApiKey,
    api_url: ApiUrl = "http://127.0.0.1:6900",
    workspace: Workspace = "argilla",
    store: StoreOption = DEFAULT_STORE,
) -> None:
    """Turn submitted answers into a new preference version (majority vote; ties etc. removed)."""
    r = pull_answers(Store(store), dataset, into=into, api_url=api_url, api_key=api_key, workspace=workspace)
    reasons = ", ".join(f"{k} {v}" for k, v in r.removed_by_reason.items()) or "none"
    console.print(
        f"[green]committed[/] {r.dataset}@{r.version}: {r.kept} pairs kept, removed: {reasons}; "
        f"{r.answered} records answered, {r.pending} still pending"
    )
