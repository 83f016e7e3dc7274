"""A dataset version's splits shaped for one training method.

Train on ``train``, evaluate / early-stop on ``validation``, and never touch ``test`` (the
evaluators own it). The stored record kinds are TRL's conversational formats already, so
most methods only select columns; ``pretrain``, ``kto`` and the online methods derive theirs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from curate.errors import ConfigError

if TYPE_CHECKING:
    import datasets

__all__ = ["METHOD_KINDS", "MethodData", "prepare_data"]

# record kinds each method can train from
METHOD_KINDS: dict[str, tuple[str, ...]] = {
    "sft": ("sft",),
    "pretrain": ("sft", "prompt"),
    "reward": ("preference",),
    "dpo": ("preference",),
    "kto": ("preference",),
    "ppo": ("prompt", "sft", "preference"),
    "grpo": ("prompt", "sft", "preference"),
    "rloo": ("prompt", "sft", "preference"),
    "head": ("sft", "prompt"),
}


@dataclass
class MethodData:
    """The train split and (when the version has one) the validation split, in the method's columns."""

    train: datasets.Dataset
    validation: datasets.Dataset | None


def _user_turns(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation up to (not including) the first assistant turn."""
    out = []
    for m in messages:
        if m["role"] == "assistant":
            break
        out.append({"role": m["role"], "content": m["content"]})
    return out


def _text(messages: list[dict[str, Any]]) -> str:
    return "\n\n".join(m["content"] for m in messages if m["content"])


def _shape(split: datasets.Dataset, *, method: str, kind: str) -> datasets.Dataset:
    drop = list(split.column_names)
    if method == "sft":
        return split.select_columns(["messages"])
    if method == "pretrain":
        column = "messages" if kind == "sft" else "prompt"
        return split.map(lambda r: {"text": _text(r[column])}, remove_columns=drop)
    if method in ("reward", "dpo"):
        return split.select_columns(["prompt", "chosen", "rejected"])
    if method == "kto":
        # one desirable and one undesirable example per pair (TRL's unpaired format)
        def unpair(batch: dict[str, list]) -> dict[str, list]:
            n = len(batch["prompt"])  # interleaved: chosen_0, rejected_0, chosen_1, ...
            return {
                "prompt": [p for p in batch["prompt"] for _ in (0, 1)],
                "completion": [c for pair in zip(batch["chosen"], batch["rejected"], strict=True) for c in pair],
                "label": [True, False] * n,
            }

        pairs = split.select_columns(["prompt", "chosen", "rejected"])
        return pairs.map(unpair, batched=True, remove_columns=pairs.column_names)
    if method == "head":
        column = "messages" if kind == "sft" else "prompt"
        return split.map(lambda r: {"text": _text(_user_turns(r[column])), "label": r["label"]}, remove_columns=drop)
    # online RL: prompts only
    if kind == "sft":
        return split.map(lambda r: {"prompt": _user_turns(r["messages"])}, remove_columns=drop)
    return split.select_columns(["prompt"])


def prepare_data(splits: datasets.DatasetDict, *, method: str, kind: str, ref: str) -> MethodData:
    """Select or derive the columns ``method`` trains on from a version's kept splits.

    Parameters
    ----------
    splits
        ``Store.load(ref)``: the version's non-empty splits.
    method
        Recipe method, or ``head`` for a classification head.
    kind
        Record kind of the version.
    ref
        ``name@N``, for error messages.

    Raises
    ------
    ConfigError
        The version's kind does not fit the method, it has no ``train`` rows, or ``head``
        data has no labels.
    """
    if kind not in METHOD_KINDS[method]:
        raise ConfigError(
            f"Dataset {ref} holds {kind} records, but method {method!r} trains on "
            f"{' or '.join(METHOD_KINDS[method])} records. Pick a {METHOD_KINDS[method][0]} version."
        )
    if "train" not in splits:
        raise ConfigError(f"Dataset {ref} has no `train` rows; add a `split` stage that leaves rows in train.")
    if method == "head" and all(v is None for v in splits["train"]["label"]):
        raise ConfigError(f"Dataset {ref} has no `label` values; adapter `head` learns to predict the label column.")
    train = _shape(splits["train"], method=method, kind=kind)
    validation = _shape(splits["validation"], method=method, kind=kind) if "validation" in splits else None
    return MethodData(train=train, validation=validation)
