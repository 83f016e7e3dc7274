"""Refuse to evaluate a run on rows it was trained on.

Row ids are content hashes, so the check holds across versions and datasets: a row whose
content was in the run's ``train`` split is caught even if it reappears in another version's
``test`` split.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from curate.errors import CurateError

__all__ = ["HeldOutError", "check_held_out"]


class HeldOutError(CurateError):
    """The rows to evaluate include rows a run was trained on."""


def check_held_out(store: Any, *, trained_on: str, run: str, eval_ref: str, split: str, eval_ids: Iterable[str]) -> None:
    """Raise :class:`HeldOutError` when any of ``eval_ids`` is in the ``train`` split of ``trained_on``.

    Parameters
    ----------
    store
        The :class:`curate.store.Store` holding ``trained_on``.
    trained_on
        ``name@N`` the run was trained on (from its manifest).
    run
        The run's id, for the message.
    eval_ref, split
        What is being evaluated, for the message.
    eval_ids
        Ids of the rows to evaluate.
    """
    train_ids = set(store.kept(trained_on, split="train").get_column("id").to_list())
    ids = list(eval_ids)
    leaked = [i for i in ids if i in train_ids]
    if not leaked:
        return
    hint = (
        f"use the held-out split instead (`--split test`; the version the run was trained on is {trained_on})"
        if split == "train"
        else "evaluate on a version whose held-out rows were never in the run's train split "
        "(the `decontaminate` stage removes overlaps against held-out files)"
    )
    raise HeldOutError(
        f"Refusing to evaluate run {run!r} on {eval_ref} split {split!r}: {len(leaked)} of its {len(ids)} rows "
        f"were in the train split of {trained_on}, which the run was trained on (first ids: {', '.join(leaked[:3])}). "
        f"Scores on training rows say nothing about held-out quality; {hint}."
    )
