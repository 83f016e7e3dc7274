"""What training adds to the run folders of :mod:`curate.runs`: new run folders, the recipe hash, package versions.

Run lookup and manifest I/O live in :mod:`curate.runs`; their names stay importable from here.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from curate.runs import (
    MANIFEST,
    RunError,
    RunInfo,
    find_resumable,
    list_runs,
    read_manifest,
    record_evaluation,
    resolve_run,
    show_run,
    update_manifest,
)

from .recipe import Recipe

__all__ = [
    "MANIFEST",
    "RunError",
    "RunInfo",
    "find_resumable",
    "list_runs",
    "new_run_dir",
    "package_versions",
    "read_manifest",
    "recipe_hash",
    "record_evaluation",
    "resolve_run",
    "show_run",
    "update_manifest",
]

_PACKAGES = ("curate", "torch", "transformers", "trl", "peft", "accelerate", "bitsandbytes", "datasets", "sentence-transformers")


def recipe_hash(recipe: Recipe) -> str:
    """sha256 of the recipe's canonical JSON (sorted keys, every default filled in).

    The ``evaluate:`` block is left out: how a run is evaluated does not change what it trains,
    so changing it does not block ``--resume``.
    """
    text = json.dumps(recipe.model_dump(mode="json", exclude={"evaluate"}), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages a run depends on (None when absent)."""
    out: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def new_run_dir(root: Path, *, recipe: Recipe, digest: str) -> Path:
    """Create ``root/<name>-<UTC time>-<hash6>`` (unique) and return it."""
    stem = f"{recipe.name or f'{recipe.method}-{recipe.adapter}'}-{datetime.now(UTC):%Y%m%d-%H%M%S}-{digest[:6]}"
    root.mkdir(parents=True, exist_ok=True)
    for n in range(1000):
        path = root / (stem if n == 0 else f"{stem}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RunError(f"Could not create a new run folder under {root} named {stem}-N.")
