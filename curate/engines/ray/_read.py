"""Reading on Ray: the files of a source cut into chunks, each chunk read and converted in ``map_batches``.

Each file's format and kind is decided once, by :func:`curate.formats.resolve_source` in a Ray task
(the first file first: its kind holds for the others). Then the driver plans the chunks:

- JSONL: byte ranges of about ``chunk_bytes``, each moved to the next line start. A first pass
  counts the newlines of each range on the workers, so every chunk knows the file line it starts
  at and ``meta.line`` and error lines are exact; the second converts each range with
  :func:`curate.formats.read_jsonl_block`.
- Parquet: runs of row groups of about ``chunk_bytes``, converted with
  :func:`curate.formats.read_table_chunk` (row numbers from the row group sizes in the footer).
- Anything else (CSV and TSV, whose quoted cells may span lines; JSON arrays, compressed files,
  ``datasets`` folders): one task per file, :func:`curate.formats.read_source` on that file.

A chunk that fails returns the :class:`InputError` text instead of rows, and the driver raises the
first one in file order: the error the local reader raises. Conversion is the formats package's;
nothing here parses a row (see :mod:`curate.engines.ray._chunks` for the worker side).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from curate.engines.ray._chunks import ERROR, FILE, INVALID, KEYS, File, chunk_schema, count_newlines, read_chunk
from curate.errors import InputError
from curate.formats import SourceRows, resolve_source
from curate.formats.reader import resolve_files
from curate.formats.table import check_mapping
from curate.records import SCHEMAS

if TYPE_CHECKING:
    from curate.config import SourceConfig

__all__ = ["read_files"]

log = logging.getLogger(__name__)

MAX_CHUNK_BYTES = 64 << 20  # input bytes per task, at most: about 80,000 rows of support conversations
MIN_CHUNK_BYTES = 1 << 20  # below this, a task costs more in scheduling than it saves


def _chunk_bytes(files: list[File]) -> int:
    """Two chunks per cluster CPU over the source's files, within [1 MB, 64 MB]."""
    import ray

    total = sum(Path(f.path).stat().st_size for f in files if Path(f.path).is_file())
    per_cpu = total // max(1, 2 * int(ray.cluster_resources().get("CPU", 1)))
    return min(MAX_CHUNK_BYTES, max(MIN_CHUNK_BYTES, per_cpu))


def _resolve(source: SourceConfig, path: str, shown: str) -> SourceConfig | str:
    try:
        return resolve_source(source, path=Path(path), shown=shown)
    except InputError as exc:
        return str(exc)


def _resolved(source: SourceConfig, base_dir: Path) -> tuple[list[File], str | None]:
    """The files of ``source``, resolved, up to the first that fails; and that failure's message."""
    import ray

    found = resolve_files(source.path, base_dir=base_dir)
    remote = ray.remote(_resolve)
    first = ray.get(remote.remote(source, str(found[0][1]), found[0][0]))
    kind = None if isinstance(first, str) else first.kind
    rest = ray.get([remote.remote(source.model_copy(update={"kind": kind}), str(p), s) for s, p in found[1:]]) if kind else []
    files: list[File] = []
    for (shown, path), got in zip(found, [first, *rest], strict=False):
        if isinstance(got, str):
            return files, got
        files.append(File(shown=shown, path=str(path), base_dir=str(base_dir), source=got))
    return files, None


def _parquet_chunks(path: Path, chunk_bytes: int) -> list[tuple[int, int, int]]:
    """``(first group, end group, first row)`` runs of row groups; none if the footer does not read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(path).metadata
    except (OSError, pa.ArrowException):
        return []  # read whole, so the error is the local reader's
    chunks, start, row, size = [], 0, 1, 0
    for group in range(meta.num_row_groups):
        size += meta.row_group(group).total_byte_size
        if size >= chunk_bytes or group == meta.num_row_groups - 1:
            chunks.append((start, group + 1, row))
            row += sum(meta.row_group(g).num_rows for g in range(start, group + 1))
            start, size = group + 1, 0
    return chunks


def _plan(files: list[File], chunk_bytes: int) -> list[dict]:
    """One item per chunk: the file's index, what to read (``jsonl`` / ``parquet`` / ``file``) and where."""
    items = []
    for index, file in enumerate(files):
        path = Path(file.path)
        suffix = path.suffix.lower() if path.is_file() else ""
        parquet = _parquet_chunks(path, chunk_bytes) if suffix == ".parquet" else []
        if suffix in (".jsonl", ".ndjson"):
            size = path.stat().st_size
            items += [{"file": index, "what": "jsonl", "start": s, "end": min(s + chunk_bytes, size), "first": 0}
                      for s in range(0, max(size, 1), chunk_bytes)]
        elif parquet:
            items += [{"file": index, "what": "parquet", "start": a, "end": b, "first": row} for a, b, row in parquet]
        else:
            items.append({"file": index, "what": "file", "start": 0, "end": 0, "first": 1})
    return items


def _with_line_starts(items: list[dict], files: list[File]) -> list[dict]:
    """JSONL items with ``first``: the newlines before their byte range, counted on the workers."""
    import ray.data

    last = {item["file"]: i for i, item in enumerate(items) if item["what"] == "jsonl"}  # each file's last range
    counted = [item for i, item in enumerate(items) if item["what"] == "jsonl" and i != last[item["file"]]]
    counts: list[int] = []
    if counted:  # a file in one range starts at line 1: nothing to count
        found = ray.data.from_items(counted, override_num_blocks=len(counted)).map_batches(
            count_newlines, batch_size=1, batch_format="pyarrow", fn_kwargs={"files": files})
        counts = [n for t in found.iter_batches(batch_format="pyarrow", batch_size=None) for n in t["newlines"].to_pylist()]
    before, next_count = {}, iter(counts).__next__
    for i, item in enumerate(items):
        if item["what"] == "jsonl":
            item["first"] = before.get(item["file"], 0)
            before[item["file"]] = item["first"] + (next_count() if i != last[item["file"]] else 0)
    return items


@dataclass
class _Collected:
    """The chunks' rows as they arrive in file order; each JSONL table's mapping checked when its file ends."""

    files: list[File]
    checked_keys: set[int]  # files whose mapping is checked here: JSONL tables (any line may add a key)
    valid: list[pl.DataFrame] = field(default_factory=list)
    invalid: list[pl.DataFrame] = field(default_factory=list)
    keys: dict[int, dict[str, None]] = field(default_factory=dict)
    done: int = 0  # files before this one are complete

    def add(self, rows: pl.DataFrame) -> None:
        parts = rows.partition_by(FILE, maintain_order=True) if rows[FILE].n_unique() > 1 else [rows]
        for part in parts:
            self.close(part[FILE][0])
            if (error := part.get_column(ERROR).drop_nulls()).len():
                raise InputError(error[0])
            for keys in part.get_column(KEYS).drop_nulls():
                self.keys.setdefault(part[FILE][0], {}).update(dict.fromkeys(keys))
            flag = part.get_column(INVALID)
            if flag.any():  # else no copy: the valid rows stay in the buffers Ray handed over
                self.invalid.append(part.filter(flag).drop(INVALID, ERROR, FILE, KEYS))
                part = part.filter(~flag)
            self.valid.append(part.select(list(SCHEMAS[self.files[0].kind])))

    def close(self, upto: int) -> None:
        """Files before ``upto`` are read: check their mappings, in order, as the local reader does."""
        for index in range(self.done, upto):
            if index in self.checked_keys:
                file = self.files[index]
                check_mapping(file.source.mapping, kind=file.kind, columns=list(self.keys.get(index, {})), path=file.shown)
        self.done = max(self.done, upto)


def read_files(source: SourceConfig, base_dir: Path, *, chunk_bytes: int | None = None) -> SourceRows:
    """:func:`curate.formats.read_source` on Ray: the same rows, invalid rows, errors and ``files``.

    Parameters
    ----------
    source
        The pipeline source (file or glob, relative to ``base_dir``).
    base_dir
        The pipeline file's folder. Workers open the same paths: one machine, or a shared file system.
    chunk_bytes
        Input bytes per task for JSONL and Parquet files; ``None``: two tasks per cluster CPU, each
        of 1 to 64 MB.

    Returns
    -------
    :class:`curate.formats.SourceRows`, collected on the driver.
    """
    import ray.data

    files, failed = _resolved(source, base_dir)
    if not files:
        raise InputError(failed)
    items = _with_line_starts(_plan(files, chunk_bytes or _chunk_bytes(files)), files)
    log.info("%s: %d file(s) read on Ray in %d chunk(s)", source.path, len(files), len(items))
    tables = [] if not items else ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
        read_chunk, batch_size=1, batch_format="pyarrow", fn_kwargs={"files": files},
    ).iter_batches(batch_format="pyarrow", batch_size=None)
    jsonl_tables = {item["file"] for item in items if item["what"] == "jsonl" and files[item["file"]].source.format == "table"}
    collected = _Collected(files=files, checked_keys=jsonl_tables)
    for table in tables:  # chunk by chunk, in file order
        collected.add(pl.from_arrow(table))
    collected.close(len(files))
    if failed:
        raise InputError(failed)
    kind = files[0].kind
    schema = chunk_schema(kind)
    return SourceRows(
        kind=kind,
        valid=pl.concat([pl.DataFrame(schema=SCHEMAS[kind]), *collected.valid]),
        invalid=pl.concat([pl.DataFrame(schema=schema).drop(INVALID, ERROR, FILE, KEYS), *collected.invalid]),
        files=[file.shown for file in files],
    )
