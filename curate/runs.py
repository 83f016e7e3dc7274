"""Run folders and their ``manifest.json``: lookup and manifest I/O shared by training, evaluation and serving.

.. code-block:: text

    runs/<run-id>/
        manifest.json     base model + hash, method, adapter, dataset name@N, recipe hash,
                          package versions, metrics, status; `evaluation` is filled later
        recipe.yaml       the resolved recipe (dataset version and defaults filled in)
        model/            weights (full / head) or adapter (PEFT), safetensors, plus tokenizer
        checkpoints/      trainer checkpoints (``--resume`` continues from the newest)

:mod:`curate.train` writes run folders, :mod:`curate.evaluate` reads them and records its
results here; neither imports the other for it. This module imports nothing but the standard
library and :mod:`curate.errors`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate.errors import CurateError

__all__ = [
    "MANIFEST",
    "RunError",
    "RunInfo",
    "find_resumable",
    "find_run",
    "list_runs",
    "read_manifest",
    "record_evaluation",
    "resolve_run",
    "show_run",
    "update_manifest",
]

MANIFEST = "manifest.json"


class RunError(CurateError):
    """A run folder is missing or its manifest cannot be read."""


def read_manifest(run_dir: Path) -> dict[str, Any]:
    """The manifest of one run folder."""
    try:
        return json.loads((run_dir / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"{run_dir} is not a run folder: it has no {MANIFEST}.") from None
    except json.JSONDecodeError as exc:
        raise RunError(f"{run_dir / MANIFEST} is not valid JSON ({exc}); the run was interrupted while writing it.") from exc


def _write_manifest(run_dir: Path, manifest: dict[str, Any]) -> None:
    tmp = run_dir / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, run_dir / MANIFEST)  # atomic: a reader never sees half a manifest


def update_manifest(run_dir: Path, **fields: Any) -> dict[str, Any]:
    """Merge ``fields`` into the run's manifest (top-level keys) and write it atomically."""
    path = run_dir / MANIFEST
    manifest = read_manifest(run_dir) if path.exists() else {}
    manifest.update(fields)
    _write_manifest(run_dir, manifest)
    return manifest


def record_evaluation(run: str | Path, report: dict[str, Any], *, root: str | Path = "runs") -> dict[str, Any]:
    """Store an evaluation report under the manifest's ``evaluation`` key (used by ``curate.evaluate``).

    Reports accumulate by dataset reference: ``{"support@3": {...}, ...}``; ``report`` must hold
    a ``dataset`` key, or it is stored under ``"default"``.
    """
    run_dir = resolve_run(run, root=root)
    manifest = read_manifest(run_dir)
    evaluation = manifest.get("evaluation") or {}
    evaluation[str(report.get("dataset", "default"))] = report
    return update_manifest(run_dir, evaluation=evaluation)


def find_run(run: str | Path, *, root: str | Path = "runs") -> Path | None:
    """The run folder ``run`` names (its path, or its id under ``root``); ``None`` when it names none."""
    for candidate in (Path(run), Path(root) / str(run)):
        if (candidate / MANIFEST).is_file():
            return candidate
    return None


def resolve_run(run: str | Path, *, root: str | Path = "runs") -> Path:
    """A run folder from its path or its id under ``root``; :class:`RunError` naming recent runs otherwise."""
    found = find_run(run, root=root)
    if found is not None:
        return found
    known = ", ".join(r.run_id for r in list_runs(root)[:5]) or "none"
    raise RunError(f"No run {str(run)!r}: not a run folder, and not a run id under {root} (recent: {known}).")


@dataclass(frozen=True)
class RunInfo:
    """One line of ``curate runs list``."""

    run_id: str
    path: Path
    status: str
    method: str
    adapter: str
    dataset: str
    base_model: str
    created: str
    metrics: dict[str, Any]


def list_runs(root: str | Path = "runs") -> list[RunInfo]:
    """Runs under ``root``, newest first; folders without a readable manifest are skipped."""
    root = Path(root)
    out = []
    for path in root.iterdir() if root.is_dir() else []:
        try:
            m = read_manifest(path)
        except RunError:
            continue
        base = m.get("base_model", {})
        out.append(
            RunInfo(
                run_id=path.name,
                path=path,
                status=m.get("status", "?"),
                method=m.get("method", "?"),
                adapter=m.get("adapter", "?"),
                dataset=m.get("dataset", {}).get("ref", "?"),
                base_model=base.get("path") or base.get("id") or "?",
                created=m.get("created", ""),
                metrics=m.get("metrics") or {},
            )
        )
    return sorted(out, key=lambda r: (r.created, r.run_id), reverse=True)


def show_run(run: str | Path, *, root: str | Path = "runs") -> dict[str, Any]:
    """The full manifest of one run (by path or id)."""
    return read_manifest(resolve_run(run, root=root))


def find_resumable(root: Path, *, digest: str) -> Path | None:
    """The newest unfinished run whose manifest has ``recipe_hash == digest`` (dataset version included)."""
    for info in list_runs(root):
        if info.status != "completed" and read_manifest(info.path).get("recipe_hash") == digest:
            return info.path
    return None
