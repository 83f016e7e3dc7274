"""A dataset version's splits shaped for one training method.

Train on ``train``, evaluate / early-stop on ``validation``, and never touch ``test`` (the
evaluators own it). The stored record kinds are TRL's conversational formats already, so
most methods only select columns; ``pretrain``, ``kto`` and the online methods derive theirs.
``kto`` also trains on ``feedback`` rows (unpaired): each row's verdict (:mod:`curate.feedback`:
thumbs, rating, escalation, correction) is its desirable / undesirable label, and rows with no
usable signal are left out and counted (:attr:`MethodData.feedback`, the run manifest).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from curate.errors import ConfigError
from curate.feedback import verdict

if TYPE_CHECKING:
    import datasets

__all__ = ["METHOD_KINDS", "MethodData", "head_text", "prepare_data"]

# record kinds each method can train from
METHOD_KINDS: dict[str, tuple[str, ...]] = {
    "sft": ("sft",),
    "pretrain": ("sft", "prompt"),
    "reward": ("preference",),
    "dpo": ("preference",),
    "kto": ("preference", "feedback"),
    "ppo": ("prompt", "sft", "preference"),
    "grpo": ("prompt", "sft", "preference"),
    "rloo": ("prompt", "sft", "preference"),
    "head": ("sft", "prompt"),
}


@dataclass
class MethodData:
    """The train split and (when the version has one) the validation split, in the method's columns.

    ``feedback`` (kto on ``feedback`` rows only) counts the rows read, used (desirable /
    undesirable) and skipped per reason, over train and validation; ``None`` for other data.
    """

    train: datasets.Dataset
    validation: datasets.Dataset | None
    feedback: dict[str, Any] | None = None


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


def head_text(messages: list[dict[str, Any]]) -> str:
    """The text a ``head`` run classifies: the turns before the first assistant turn, joined."""
    return _text(_user_turns(messages))


def _feedback_rows(split: datasets.Dataset, counts: Counter) -> datasets.Dataset:
    """KTO rows (prompt, completion, label) of the feedback rows with a verdict; the others counted by reason."""
    verdicts = [verdict(value) for value in split["feedback"]]
    keep = [i for i, v in enumerate(verdicts) if v.desirable is not None]
    counts.update(v.reason for v in verdicts if v.desirable is None)
    counts.update("desirable" if verdicts[i].desirable else "undesirable" for i in keep)
    rows = split.select(keep).select_columns(["prompt", "completion"])
    return rows.add_column("label", [verdicts[i].desirable for i in keep])


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
        return split.map(lambda r: {"text": head_text(r[column]), "label": r["label"]}, remove_columns=drop)
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
        The version's kind does not fit the method, it has no ``train`` rows, ``head``
        data has no labels, or no ``feedback`` train row has a verdict (``kto``).
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
    if method == "kto" and kind == "feedback":
        return _kto_feedback(splits, ref=ref)
    train = _shape(splits["train"], method=method, kind=kind)
    validation = _shape(splits["validation"], method=method, kind=kind) if "validation" in splits else None
    return MethodData(train=train, validation=validation)


def _kto_feedback(splits: datasets.DatasetDict, *, ref: str) -> MethodData:
    """KTO on ``feedback`` rows: each row's verdict is its label; rows without one are counted, not trained on."""
    counts: Counter = Counter()
    train = _feedback_rows(splits["train"], counts)
    if not len(train):
        found = ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items()))
        raise ConfigError(
            f"Dataset {ref} has no train rows with usable feedback ({found}); KTO needs rows whose `feedback` "
            "has thumbs, a rating other than 3, `escalated: true` or a correction."
        )
    validation = _feedback_rows(splits["validation"], counts) if "validation" in splits else None
    rows = sum(len(s) for name, s in splits.items() if name in ("train", "validation"))
    used = counts["desirable"] + counts["undesirable"]
    skipped = {reason: n for reason, n in sorted(counts.items()) if reason not in ("desirable", "undesirable")}
    feedback = {"rows": rows, "used": used, "desirable": counts["desirable"], "undesirable": counts["undesirable"],
                "skipped": rows - used, "skipped_by_reason": skipped}  # fmt: skip
    return MethodData(train=train, validation=validation if validation is not None and len(validation) else None,
                      feedback=feedback)  # fmt: skip
