"""curate: curation stages that emit versioned datasets for fine-tuning language models.

>>> import curate
>>> splits = curate.load("support@0", store="datasets")   # doctest: +SKIP
>>> splits["train"][0]["messages"]                         # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["__version__", "load"]

if TYPE_CHECKING:
    import datasets

DEFAULT_STORE = "datasets"


def load(ref: str, *, store: str | Path = DEFAULT_STORE) -> datasets.DatasetDict:
    """Kept rows of a dataset version as a ``datasets.DatasetDict`` of its splits.

    Parameters
    ----------
    ref
        ``name@N`` for version N, or ``name`` for the latest version.
    store
        Store root (default ``./datasets``).

    Examples
    --------
    >>> curate.load("support@3")["test"]  # doctest: +SKIP
    """
    from curate.store import Store

    return Store(store).load(ref)
