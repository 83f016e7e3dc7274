"""Loss and perplexity on assistant tokens only, with the masking SFTTrainer uses.

The labels come from the same chat template, ``{% generation %}`` mask and keep-start
truncation as TRL's ``assistant_only_loss``, so a held-out loss here equals the trainer's
``eval_loss`` on the same rows when the trainer sees them in one batch (the Trainer averages
per-batch means; this averages over all tokens, which is the perplexity definition).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._inference import inference
from ._tokenize import assistant_labels, plain_messages, training_chat_template
from .bootstrap import Interval, bootstrap_ci

__all__ = ["TokenLoss", "assistant_token_loss"]


@dataclass(frozen=True)
class TokenLoss:
    """Summed negative log-likelihood and token count per example."""

    nll: list[float]
    tokens: list[int]

    @property
    def loss(self) -> float:
        """Mean NLL per assistant token over all examples (nats)."""
        total = sum(self.tokens)
        return sum(self.nll) / total if total else float("nan")

    @property
    def perplexity(self) -> float:
        """``exp(loss)``."""
        return math.exp(self.loss)

    def per_example_loss(self) -> list[float]:
        """Mean NLL per token of each example (for the worst-examples table)."""
        return [n / t if t else float("nan") for n, t in zip(self.nll, self.tokens, strict=True)]

    def interval(self, *, perplexity: bool = False, resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> Interval:
        """Bootstrap interval of the token-weighted loss (or perplexity), resampling examples."""
        nll, tok = np.asarray(self.nll), np.asarray(self.tokens, dtype=float)

        def stat(idx: np.ndarray) -> float:
            idx = idx.astype(int)
            value = float(nll[idx].sum() / max(tok[idx].sum(), 1.0))
            return math.exp(value) if perplexity else value

        return bootstrap_ci(np.arange(len(nll)), statistic=stat, resamples=resamples, confidence=confidence, seed=seed)


def assistant_token_loss(
    model: Any,
    tokenizer: Any,
    conversations: Sequence[Sequence[Any]],
    *,
    batch_size: int = 8,
    max_length: int | None = 1024,
) -> TokenLoss:
    """Per-example NLL of the assistant tokens of each conversation.

    Parameters
    ----------
    model
        A causal LM (``transformers`` or a PEFT wrapper), in eval mode or not; it is not changed.
    tokenizer
        Its tokenizer, with a chat template.
    conversations
        Message lists (``{role, content}``), e.g. the ``messages`` column of an sft version.
    batch_size
        Conversations per forward pass (right-padded; padding never enters the loss).
    max_length
        Keep-start truncation as the trainer's ``max_length``; ``None`` keeps every token.

    Examples
    --------
    >>> result = assistant_token_loss(model, tok, ds["test"]["messages"])   # doctest: +SKIP
    >>> result.perplexity                                                  # doctest: +SKIP
    """
    import torch

    template = training_chat_template(tokenizer)
    rows = [
        assistant_labels(tokenizer, plain_messages(c), chat_template=template, max_length=max_length)
        for c in conversations
    ]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    nll: list[float] = []
    tokens: list[int] = []
    with inference(model):
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            width = max(len(ids) for ids, _ in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            labels = torch.full((len(batch), width), -100, dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            for i, (row_ids, row_labels) in enumerate(batch):
                ids[i, : len(row_ids)] = torch.tensor(row_ids)
                labels[i, : len(row_labels)] = torch.tensor(row_labels)
                attention[i, : len(row_ids)] = 1
            logits = model(
                input_ids=ids.to(device), attention_mask=attention.to(device), use_cache=False
            ).logits.float()
            target = labels[:, 1:].to(device)  # (B, T-1): token t+1 is predicted at position t
            logp = torch.nn.functional.cross_entropy(
                logits[:, :-1].transpose(1, 2), target, ignore_index=-100, reduction="none"
            )
            mask = target != -100
            nll.extend((logp * mask).sum(dim=1).tolist())
            tokens.extend(mask.sum(dim=1).tolist())
    return TokenLoss(nll=nll, tokens=[int(t) for t in tokens])
