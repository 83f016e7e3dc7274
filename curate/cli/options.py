"""Options shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

StoreOption = Annotated[
    Path,
    typer.Option("--store", envvar="CURATE_STORE", help="Dataset store root (env CURATE_STORE).", show_default=True),
]
DEFAULT_STORE = Path("datasets")
