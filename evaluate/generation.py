"""Batched answer generation for held-out prompts: left padding, greedy by default."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._inference import inference
from ._tokenize import plain_messages
from .config import GenerationConfig

__all__ = ["generate_answers"]


def generate_answers(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Sequence[Any]],
    *,
    config: GenerationConfig | None = None,
) -> list[str]:
    """Generate one answer per prompt through the chat template.

    Prompts are sorted by length, left-padded in batches of ``config.batch_size`` and put back
    in their input order, so batching never changes a greedy answer.

    Parameters
    ----------
    model
        A causal LM or PEFT wrapper.
    tokenizer
        Its tokenizer, with a chat template; its padding side is restored afterwards.
    prompts
        Message lists ending before the assistant turn to generate.
    config
        Length, batch size and decoding; ``None`` means greedy with the defaults of :class:`GenerationConfig`.

    Returns
    -------
    list of str
        The decoded answers without special tokens, aligned with ``prompts``.
    """
    import torch

    cfg = config or GenerationConfig()
    texts = [
        tokenizer.apply_chat_template(plain_messages(p), tokenize=False, add_generation_prompt=True) for p in prompts
    ]
    lengths = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    order = sorted(range(len(texts)), key=lambda i: lengths[i])
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    answers: list[str] = [""] * len(texts)
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    had_pad = tokenizer.pad_token is not None
    if not had_pad:
        tokenizer.pad_token = tokenizer.eos_token
    generator_state = torch.random.get_rng_state()
    try:
        if cfg.do_sample:
            torch.manual_seed(cfg.seed)
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            enc = tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
            kwargs: dict[str, Any] = {"max_new_tokens": cfg.max_new_tokens, "do_sample": cfg.do_sample, "pad_token_id": pad}
            if cfg.do_sample:
                kwargs.update(temperature=cfg.temperature, top_p=cfg.top_p, top_k=0)
            else:
                kwargs.update(temperature=None, top_p=None, top_k=None)
            with inference(model):
                out = model.generate(**{k: v.to(device) for k, v in enc.items()}, **kwargs)
            new = out[:, enc["input_ids"].shape[1] :]
            for i, row in zip(idx, new, strict=True):
                answers[i] = tokenizer.decode(row, skip_special_tokens=True).strip()
    finally:
        tokenizer.padding_side = side
        if not had_pad:
            tokenizer.pad_token = None
        if cfg.do_sample:
            torch.random.set_rng_state(generator_state)
    return answers
