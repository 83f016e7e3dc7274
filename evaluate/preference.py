"""Held-out preference metrics: reward-model accuracy and the DPO implicit reward margin."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._inference import inference
from ._tokenize import completion_ids, plain_messages

__all__ = ["completion_logprobs", "dpo_reward_margins", "preference_correct", "reward_scores"]


def _batches(rows: list[list[int]], batch_size: int, pad: int) -> Any:
    import torch

    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        width = max(len(r) for r in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        for i, r in enumerate(batch):
            ids[i, : len(r)] = torch.tensor(r)
            attention[i, : len(r)] = 1
        yield start, ids, attention


def _pad_id(tokenizer: Any) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def reward_scores(
    model: Any, tokenizer: Any, conversations: Sequence[Sequence[Any]], *, batch_size: int = 8
) -> list[float]:
    """Scalar reward of each full conversation, tokenised as TRL's RewardTrainer does (chat template, no generation prompt).

    Parameters
    ----------
    model
        A sequence-classification model with one label (``AutoModelForSequenceClassification``).
    tokenizer
        Its tokenizer; the model reads the score at the last non-pad token, so
        ``model.config.pad_token_id`` must be set (curate's reward runs save it).
    conversations
        Full message lists (prompt + answer).
    batch_size
        Conversations per forward pass (right-padded).
    """

    rows = [
        list(tokenizer.apply_chat_template(plain_messages(c), tokenize=True, return_dict=False)) for c in conversations
    ]
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = _pad_id(tokenizer)
    device = next(model.parameters()).device
    out: list[float] = [0.0] * len(rows)
    with inference(model):
        for start, ids, attention in _batches(rows, batch_size, _pad_id(tokenizer)):
            logits = model(input_ids=ids.to(device), attention_mask=attention.to(device)).logits
            for i, value in enumerate(logits[:, 0].float().tolist()):
                out[start + i] = value
    return out


def preference_correct(chosen: Sequence[float], rejected: Sequence[float]) -> list[float]:
    """Per pair: 1.0 when the chosen answer scores above the rejected one, 0.5 on an exact tie, else 0.0."""
    return [1.0 if c > r else 0.5 if c == r else 0.0 for c, r in zip(chosen, rejected, strict=True)]


def completion_logprobs(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Sequence[Any]],
    completions: Sequence[Sequence[Any]],
    *,
    batch_size: int = 8,
    max_length: int | None = None,
    mean: bool = False,
) -> list[float]:
    """Summed log-probability of each completion's tokens given its prompt (the quantity DPO compares).

    ``mean``: the mean over the completion's tokens instead of their sum, up to and including
    the end-of-turn (EOS) token: what the model writes, not the template text after it (ChatML's
    newline), which it never generates. NaN for a completion with no token. The loop's
    uncertainty of a causal LM's own answer.
    """
    import torch

    encoded = [
        completion_ids(tokenizer, plain_messages(p), plain_messages(c), max_length=max_length)
        for p, c in zip(prompts, completions, strict=True)
    ]
    rows = [ids for ids, _ in encoded]
    device = next(model.parameters()).device
    out: list[float] = [0.0] * len(rows)
    with inference(model):
        for start, ids, attention in _batches(rows, batch_size, _pad_id(tokenizer)):
            logits = model(input_ids=ids.to(device), attention_mask=attention.to(device), use_cache=False).logits
            logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
            token_logp = logp.gather(-1, ids[:, 1:].to(device).unsqueeze(-1)).squeeze(-1)  # (B, T-1)
            for i in range(ids.shape[0]):
                full, begin = encoded[start + i]
                # token j (j >= begin) is predicted at position j - 1
                if not mean:
                    out[start + i] = float(token_logp[i, max(begin - 1, 0) : len(full) - 1].sum())
                    continue
                span = token_logp[i, max(begin - 1, 0) : _answer_end(full, begin, tokenizer.eos_token_id) - 1]
                out[start + i] = float(span.mean()) if span.numel() else float("nan")
    return out


def _answer_end(ids: list[int], begin: int, eos: int | None) -> int:
    """One past the completion's last EOS token (``len(ids)`` when it has none)."""
    for j in range(len(ids) - 1, begin - 1, -1):
        if ids[j] == eos:
            return j + 1
    return len(ids)


def dpo_reward_margins(
    policy: Any,
    reference: Any,
    tokenizer: Any,
    rows: Sequence[dict[str, Any]],
    *,
    beta: float = 0.1,
    batch_size: int = 8,
    max_length: int | None = None,
) -> list[float]:
    """DPO implicit reward margin per pair: ``beta * [(log pi/ref)(chosen) - (log pi/ref)(rejected)]``.

    Parameters
    ----------
    policy, reference
        The DPO-trained model and the model it was trained against (usually its base).
    rows
        Preference rows with ``prompt``, ``chosen`` and ``rejected`` message lists.
    beta
        The run's DPO ``beta`` (TRL's default is 0.1).
    """
    prompts = [r["prompt"] for r in rows]
    chosen = [r["chosen"] for r in rows]
    rejected = [r["rejected"] for r in rows]
    kw = {"batch_size": batch_size, "max_length": max_length}
    pc = completion_logprobs(policy, tokenizer, prompts, chosen, **kw)
    pr = completion_logprobs(policy, tokenizer, prompts, rejected, **kw)
    rc = completion_logprobs(reference, tokenizer, prompts, chosen, **kw)
    rr = completion_logprobs(reference, tokenizer, prompts, rejected, **kw)
    return [beta * ((a - b) - (c - d)) for a, c, b, d in zip(pc, pr, rc, rr, strict=True)]
