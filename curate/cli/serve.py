"""`curate serve RUN_OR_MODEL [RUN ...]`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from curate.cli.options import DEFAULT_STORE, StoreOption

Sources = Annotated[
    list[str],
    typer.Argument(
        help="A model folder or run, then adapter runs on the same base (run ids or run folders).",
        metavar="RUN_OR_MODEL",
    ),
]
Host = Annotated[str, typer.Option("--host", help="Address to listen on (default: local connections only).")]
FeedbackDataset = Annotated[
    str, typer.Option("--feedback-dataset", help="feedback-kind dataset that logs completions and feedback.")
]
FlushEvery = Annotated[int, typer.Option("--flush-every", min=1, help="Commit the log every N completions.")]
FlushSeconds = Annotated[
    float, typer.Option("--flush-seconds", min=0.05, help="Commit the log at least this often (and on shutdown).")
]


def serve(
    sources: Sources,
    host: Host = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    feedback_dataset: FeedbackDataset = "feedback",
    flush_every: FlushEvery = 64,
    flush_seconds: FlushSeconds = 10.0,
    runs: Annotated[Path, typer.Option("--runs", help="Folder of run folders.")] = Path("runs"),
    store: StoreOption = DEFAULT_STORE,
) -> None:
    """Serve a base model and LoRA runs on it (OpenAI API); log completions and feedback to a dataset."""
    from curate.serve import serve as serve_models

    serve_models(sources, host=host, port=port, store=store, feedback_dataset=feedback_dataset, runs_root=runs,
                 flush_every=flush_every, flush_seconds=flush_seconds)  # fmt: skip
