"""A pipeline's inputs: every source read (files through an engine's reader, stored versions from the store)."""

from __future__ import annotations

import glob
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from curate.errors import ConfigError, CurateError
from curate.records import SCHEMAS
from curate.stats import StageStats
from curate.store import parse_ref

if TYPE_CHECKING:
    from curate.config import SourceConfig
    from curate.formats import SourceRows
    from curate.store import Store

__all__ = ["Inputs", "file_sha256", "read_inputs"]


@dataclass
class Inputs:
    """What a pipeline reads, before any stage runs.

    Attributes
    ----------
    kind
        The record kind every source produced.
    valid, invalid
        Rows of every source in order; ``invalid`` carries ``reason`` and ``detail``.
    parents
        Stored versions read (``dataset``, ``version``, ``rows``), for the lineage.
    files
        Files read (``path`` as written, ``sha256``), for the lineage.
    """

    kind: str
    valid: pl.DataFrame
    invalid: pl.DataFrame
    parents: list[dict]
    files: list[dict]

    def convert_stats(self, *, seconds: float) -> StageStats:
        """The ``convert`` stats row: every input row in, the invalid ones removed with their reasons."""
        return StageStats(
            stage="convert",
            name="convert",
            rows_in=self.valid.height + self.invalid.height,
            rows_added=0,
            rows_kept=self.valid.height,
            rows_removed=self.invalid.height,
            removed_by_reason=dict(self.invalid.group_by("reason").len().sort("reason").iter_rows()),
            seconds=seconds,
        )


def file_sha256(path: Path) -> str:
    """Content hash of a file, or of a folder (e.g. a `datasets` save): its files' paths and bytes."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with file.open("rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _is_reference(source: SourceConfig, base_dir: Path, store: Store) -> bool:
    """A path that names no file but parses as ``name[@N]`` of a stored dataset is a reference."""
    if glob.has_magic(source.path) or (base_dir / source.path).exists():
        return False
    try:
        name, _ = parse_ref(source.path)
    except CurateError:
        return False
    return name in store.names()


def read_inputs(
    sources: list[SourceConfig],
    *,
    base_dir: Path,
    store: Store,
    read_files: Callable[[SourceConfig, Path], SourceRows],
) -> Inputs:
    """Read every source: stored versions from ``store``, files through ``read_files(source, base_dir)``.

    Raises
    ------
    ConfigError
        When the sources produce different record kinds.
    InputError
        From ``read_files``, for a missing, unreadable or malformed file.
    """
    valids, invalids, parents, files, kinds = [], [], [], [], set()
    for source in sources:
        if _is_reference(source, base_dir, store):
            name, version = store.resolve(source.path)
            kind = store.kind(f"{name}@{version}")
            rows = store.kept(f"{name}@{version}").select(list(SCHEMAS[kind]))
            valids.append(rows)
            parents.append({"dataset": name, "version": version, "rows": rows.height})
        else:
            got = read_files(source, base_dir)
            kind = got.kind
            valids.append(got.valid)
            invalids.append(got.invalid)
            files += [{"path": f, "sha256": file_sha256(base_dir / f)} for f in got.files]
        kinds.add(kind)
    if len(kinds) > 1:
        raise ConfigError(f"The sources have different record kinds ({', '.join(sorted(kinds))}); a pipeline reads one kind.")
    (kind,) = kinds
    invalid_schema = {**SCHEMAS[kind], "reason": pl.String, "detail": pl.String}
    return Inputs(
        kind=kind,
        valid=pl.concat(valids, how="vertical_relaxed"),
        invalid=pl.concat(invalids, how="vertical_relaxed") if invalids else pl.DataFrame(schema=invalid_schema),
        parents=parents,
        files=files,
    )
