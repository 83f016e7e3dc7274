"""The labeled pool and test set of a simulation: read, split, subsampled and embedded once."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from curate.config import SourceConfig
from curate.embeddings import embed
from curate.errors import InputError
from curate.formats import read_source
from curate.train.data import head_text
from curate.train.head import encoder_path

if TYPE_CHECKING:
    from curate.loop.simulate import SimulationConfig

Track = Callable[..., Iterable[Any]]


@dataclass
class SimData:
    """Embedded pool and test rows; ``*_y`` index ``classes``."""

    classes: list[str]
    pool_x: np.ndarray  # (pool rows, dim) float32, unit length
    pool_y: np.ndarray  # (pool rows,) int64
    test_x: np.ndarray
    test_y: np.ndarray
    counts: dict[str, int] = field(default_factory=dict)  # rows read, dropped and used, for simulation.json


def stratified(labels: np.ndarray, n: int, *, rng: np.random.Generator) -> np.ndarray:
    """``min(n, rows)`` row indices drawn at random, spread over the labels.

    Each label's rows are shuffled; its i-th row gets the key ``i / rows of that label``, and the rows with
    the smallest keys are taken (ties in random order). So every label gets one row before any gets a
    second (when ``n`` >= labels), and beyond that each label's share follows its frequency.
    """
    order = rng.permutation(len(labels))
    _, inverse, counts = np.unique(labels[order], return_inverse=True, return_counts=True)
    rank = np.zeros(len(order), dtype=np.int64)  # position of each shuffled row within its label
    seen = np.zeros(len(counts), dtype=np.int64)
    for position, label in enumerate(inverse):
        rank[position] = seen[label]
        seen[label] += 1
    keys = rank / counts[inverse]
    return np.sort(order[np.argsort(keys, kind="stable")[:n]])


def _rows(source: SourceConfig, *, base_dir: Path, role: str) -> tuple[list[str], list[str], dict[str, int]]:
    """Texts and labels of a source's labeled rows (the text a head classifies: the user turns)."""
    got = read_source(source, base_dir=base_dir)
    if got.kind not in ("sft", "prompt"):
        raise InputError(
            f"The simulation's {role} ({source.path}) holds {got.kind} records; a head classifies sft or prompt "
            "records with a `label` (e.g. mapping: {user: text, assistant: category, label: category})."
        )
    column = "messages" if got.kind == "sft" else "prompt"
    frame = got.valid.select(pl.col(column), pl.col("label"))
    texts = [head_text(messages) for messages in frame[column].to_list()]
    labels = frame["label"].to_list()
    keep = [i for i, (t, y) in enumerate(zip(texts, labels, strict=True)) if t and y]
    if not keep:
        raise InputError(
            f"The simulation's {role} ({source.path}) has no rows with both a text and a `label`; "
            "map the label column (mapping: {..., label: <column>})."
        )
    counts = {f"{role}_rows_read": got.valid.height + got.invalid.height, f"{role}_rows_invalid": got.invalid.height,
              f"{role}_rows_unlabeled": got.valid.height - len(keep)}  # fmt: skip
    return [texts[i] for i in keep], [labels[i] for i in keep], counts


def load_data(
    config: SimulationConfig, *, base_dir: Path, cache_dir: Path | None, device: str | None, track: Track | None
) -> SimData:
    """Read the pool and test sources, hold out / subsample as configured, and embed every text once."""
    pool_texts, pool_labels, counts = _rows(config.pool, base_dir=base_dir, role="pool")
    pool_labels_arr = np.array(pool_labels, dtype=object)
    rng = np.random.default_rng(config.split_seed)
    if config.test is None:
        held = stratified(pool_labels_arr, config.test_size or 0, rng=rng)
        rest = np.setdiff1d(np.arange(len(pool_texts)), held)
        test_texts, test_labels = [pool_texts[i] for i in held], [pool_labels[i] for i in held]
        pool_texts, pool_labels = [pool_texts[i] for i in rest], [pool_labels[i] for i in rest]
    else:
        test_texts, test_labels, test_counts = _rows(config.test, base_dir=base_dir, role="test")
        counts |= test_counts
        if config.test_size is not None:
            keep = stratified(np.array(test_labels, dtype=object), config.test_size, rng=rng)
            test_texts, test_labels = [test_texts[i] for i in keep], [test_labels[i] for i in keep]
    in_test = set(test_texts)
    outside = [i for i, t in enumerate(pool_texts) if t not in in_test]  # a pool row the test set holds is no test
    counts["pool_rows_in_test"] = len(pool_texts) - len(outside)
    pool_texts, pool_labels = [pool_texts[i] for i in outside], [pool_labels[i] for i in outside]
    if config.pool_size is not None:
        keep = stratified(np.array(pool_labels, dtype=object), config.pool_size, rng=rng)
        pool_texts, pool_labels = [pool_texts[i] for i in keep], [pool_labels[i] for i in keep]
    counts |= {"pool_rows": len(pool_texts), "test_rows": len(test_texts)}

    classes = sorted(set(pool_labels) | set(test_labels))
    index = {name: i for i, name in enumerate(classes)}
    # the head's own encoder (not a static / onnx stand-in): these are the features it trains on
    model = encoder_path(config.recipe.model)
    texts = pool_texts + test_texts
    vectors = embed(texts, encoder="minilm", model=model, cache_dir=cache_dir, device=device, progress=track)
    return SimData(
        classes=classes,
        pool_x=vectors[: len(pool_texts)],
        pool_y=np.array([index[y] for y in pool_labels], dtype=np.int64),
        test_x=vectors[len(pool_texts) :],
        test_y=np.array([index[y] for y in test_labels], dtype=np.int64),
        counts=counts,
    )
