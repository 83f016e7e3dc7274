"""Other dataset versions mixed into the train split (recipe ``mix:``), against forgetting.

The rule (docs/training.md, "Data mixing"): a weight is a version's fraction of the mixed
train split; the recipe's ``dataset`` (the primary) has ``1 - sum(mix weights)``.

* Without ``mix_size``, every primary train row is used once (P rows) and each other version
  adds ``round(P * w / w_primary)`` rows, so 15 % general data on 1,000 support rows adds 176.
* With ``mix_size`` N, each other version gives ``round(N * w)`` rows and the primary the rest.

A version with at least that many train rows is sampled without replacement; one with fewer
gives every row ``n // rows`` times plus a sample of the remainder (``with_replacement`` in the
manifest). Sampling is seeded by the recipe's ``seed`` and the version's place in the list, and
the mixed split is shuffled with the same seed. Validation comes from the primary alone.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from curate.errors import ConfigError

from .data import MethodData, prepare_data
from .recipe import MixSource

if TYPE_CHECKING:
    import datasets

    from curate.store import Store

__all__ = ["MixedSource", "mix_counts", "mix_train", "pin_mix", "sample_indices"]


@dataclass(frozen=True)
class MixedSource:
    """What one version contributed to a mixed train split (one entry of the manifest's ``mix.sources``)."""

    ref: str  # name@N
    requested: str  # as the recipe wrote it
    weight: float
    available: int  # train rows of the version (in the method's shape)
    rows: int  # rows it gave to the mixed split
    with_replacement: bool  # rows > available: every row repeats


def _half_up(x: float) -> int:
    return math.floor(x + 0.5)  # round() rounds halves to even


def mix_counts(primary_rows: int, weights: list[float], *, size: int | None) -> list[int]:
    """Rows drawn from each version, primary first, for the ``weights`` of the other versions.

    >>> mix_counts(1000, [0.15], size=None)
    [1000, 176]
    >>> mix_counts(1000, [0.15], size=400)
    [340, 60]
    """
    if size is None:
        w_primary = 1.0 - sum(weights)
        return [primary_rows, *(_half_up(primary_rows * w / w_primary) for w in weights)]
    others = [_half_up(size * w) for w in weights]
    return [size - sum(others), *others]


def sample_indices(available: int, n: int, *, rng: np.random.Generator) -> np.ndarray:
    """``n`` row indices out of ``available``: distinct when ``n <= available``, else every
    row ``n // available`` times plus a distinct sample of the remainder."""
    repeats, rest = divmod(n, available)
    return np.concatenate([np.tile(np.arange(available), repeats), rng.permutation(available)[:rest]])


def pin_mix(store: Store, mix: list[MixSource]) -> list[MixSource]:
    """The mix with every ``name`` resolved to ``name@N`` (raises StoreError for a missing version)."""
    pinned = []
    for m in mix:
        name, version = store.resolve(m.dataset)
        pinned.append(m.model_copy(update={"dataset": f"{name}@{version}"}))
    return pinned


def _train_split(store: Store, source: str, *, primary: str, kind: str, method: str) -> datasets.Dataset:
    other = store.kind(source)
    if other != kind:
        raise ConfigError(
            f"mix version {source} holds {other} records, but dataset {primary} holds {kind} records; "
            "every version of a mix must hold the same kind."
        )
    return prepare_data(store.load(source), method=method, kind=kind, ref=source).train


def mix_train(
    data: MethodData,
    *,
    store: Store,
    ref: str,
    kind: str,
    method: str,
    mix: list[MixSource],
    requested: list[str],
    size: int | None,
    seed: int,
) -> tuple[MethodData, dict[str, Any]]:
    """Mix the pinned ``mix`` versions into the primary's train split.

    Parameters
    ----------
    data
        The primary version's splits, shaped for ``method`` (:func:`curate.train.data.prepare_data`).
    store, ref, kind
        Where the versions live; the primary's ``name@N`` and record kind.
    method
        Recipe method (or ``head``); every version is shaped the same way.
    mix
        The other versions, pinned to ``name@N`` (:func:`pin_mix`).
    requested
        References as the recipe wrote them, primary first (recorded in the manifest).
    size
        Rows of the mixed split; ``None``: the primary's rows once plus the others' shares.
    seed
        Seeds the sampling and the shuffle.

    Returns
    -------
    tuple
        The mixed data (validation unchanged) and the manifest's ``mix`` entry:
        ``{"size", "seed", "sources": [MixedSource as a dict, primary first]}``.

    Raises
    ------
    ConfigError
        A version appears twice (or is the primary), holds another record kind, or
        ``mix_size`` leaves no row for the primary.
    """
    import datasets

    refs = [ref, *(m.dataset for m in mix)]
    if len(set(refs)) < len(refs):
        twice = sorted({r for r in refs if refs.count(r) > 1})
        raise ConfigError(f"mix lists {', '.join(twice)} twice (counting the dataset {ref}); list each version once.")
    trains = [data.train, *(_train_split(store, m.dataset, primary=ref, kind=kind, method=method) for m in mix)]
    weights = [1.0 - sum(m.weight for m in mix), *(m.weight for m in mix)]
    counts = mix_counts(len(data.train), weights[1:], size=size)
    if counts[0] < 1:
        raise ConfigError(f"mix_size {size} leaves no rows for dataset {ref}; raise mix_size or lower the mix weights.")
    parts, sources = [], []
    for i, (train, n) in enumerate(zip(trains, counts, strict=True)):
        part = train.select(sample_indices(len(train), n, rng=np.random.default_rng([seed, i])))
        parts.append(part if part.features == trains[0].features else part.cast(trains[0].features))
        sources.append(MixedSource(refs[i], requested[i], round(weights[i], 6), len(train), n, n > len(train)))
    mixed = datasets.concatenate_datasets(parts).shuffle(seed=seed).flatten_indices()
    manifest = {"size": len(mixed), "seed": seed, "sources": [asdict(s) for s in sources]}
    return MethodData(train=mixed, validation=data.validation), manifest
