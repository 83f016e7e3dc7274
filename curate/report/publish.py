"""Export a version as a folder the Hugging Face ``datasets`` library reads, with its dataset card."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import polars as pl

from curate.errors import InputError
from curate.report.card import dataset_card
from curate.store import SPLITS, Store

__all__ = ["export_folder"]


def export_folder(
    store: Store,
    ref: str,
    out: str | Path,
    *,
    format: Literal["parquet", "hf"],
    license: str = "other",
) -> dict[str, int]:
    """Write the kept rows of ``ref`` into the folder ``out`` with a ``README.md`` dataset card.

    Parameters
    ----------
    store
        The dataset store.
    ref
        ``NAME@N`` or ``NAME`` (latest).
    out
        The folder to write; it must not exist or be empty.
    format
        ``parquet``: ``out/data/<split>-00000-of-00001.parquet`` per split, read by
        ``datasets.load_dataset("parquet", data_dir=out)`` or the card's ``configs``.
        ``hf``: ``DatasetDict.save_to_disk`` layout, read by ``datasets.load_from_disk(out)``.
    license
        License id written into the card's front matter.

    Returns
    -------
    Rows written per split.

    Raises
    ------
    InputError
        ``out`` is a file or a folder that is not empty, or ``format`` is unknown.
    """
    out = Path(out)
    if out.is_file() or (out.is_dir() and any(out.iterdir())):
        raise InputError(f"Cannot export into {out}: it is a file or a folder that is not empty. Pass a new folder to -o.")
    if format not in ("parquet", "hf"):
        raise InputError(f"Unknown folder export format {format!r}; use parquet or hf.")
    name, version = store.resolve(ref)
    kept = store.kept(f"{name}@{version}")
    parts = {s: part.drop("split") for s in SPLITS if (part := kept.filter(pl.col("split") == s)).height}
    out.mkdir(parents=True, exist_ok=True)
    if format == "parquet":
        (out / "data").mkdir()
        for split, part in parts.items():
            part.write_parquet(out / "data" / f"{split}-00000-of-00001.parquet")
        files = None
    else:
        store.load(f"{name}@{version}").save_to_disk(str(out))
        files = {s: f"{s}/data-*.arrow" for s in parts}
    card = dataset_card(store, f"{name}@{version}", license=license, data_files=files)
    (out / "README.md").write_text(card, encoding="utf-8")
    return {split: part.height for split, part in parts.items()}
