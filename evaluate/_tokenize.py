"""Tokenisation shared by the evaluators: the trainer's chat-template masking, and prompt/answer splits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from curate.errors import CurateError

Message = dict[str, Any]


def plain_messages(messages: Sequence[Any]) -> list[Message]:
    """``[{role, content}]`` dicts from Arrow structs / dicts, dropping other keys."""
    return [{"role": m["role"], "content": m["content"] or ""} for m in messages]


def training_chat_template(tokenizer: Any) -> str | None:
    """The template SFTTrainer uses with ``assistant_only_loss=True``.

    ``None`` means the tokenizer's own template already has ``{% generation %}`` markers.
    """
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    if tokenizer.chat_template is None:
        raise CurateError(
            f"The tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has no chat template, so conversational rows "
            "cannot be tokenised. Save one with the model (tokenizer.chat_template = ...; save_pretrained) "
            "or evaluate a checkpoint trained by curate, which saves its template."
        )
    if has_generation_markers(tokenizer.chat_template):
        return None
    template = get_training_chat_template(processing_class=tokenizer)
    if template is None or not has_generation_markers(template):
        raise CurateError(
            "The tokenizer's chat template has no {% generation %} markers and TRL has no patched training "
            "version of it, so assistant tokens cannot be told apart. Add {% generation %}...{% endgeneration %} "
            "around the assistant content in the template (see TRL's chat_templates/*_training.jinja)."
        )
    return template


def assistant_labels(
    tokenizer: Any, messages: Sequence[Message], *, chat_template: str | None, max_length: int | None
) -> tuple[list[int], list[int]]:
    """``(input_ids, labels)`` exactly as TRL's SFT preparation builds them with ``assistant_only_loss``.

    Labels are the token id on assistant tokens and -100 elsewhere; truncation keeps the start.
    """
    out = tokenizer.apply_chat_template(
        list(messages),
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=True,
        chat_template=chat_template,
    )
    ids, mask = list(out["input_ids"]), list(out["assistant_masks"])
    labels = [t if m else -100 for t, m in zip(ids, mask, strict=True)]
    if max_length is not None:
        ids, labels = ids[:max_length], labels[:max_length]
    return ids, labels


def prompt_and_answer(messages: Sequence[Any], *, system_prompt: str | None = None) -> tuple[list[Message], str]:
    """Split a conversation before its last assistant turn: ``(prompt messages, reference answer)``."""
    msgs = plain_messages(messages)
    last = max((i for i, m in enumerate(msgs) if m["role"] == "assistant"), default=None)
    if last is None:
        return _with_system(msgs, system_prompt), ""
    return _with_system(msgs[:last], system_prompt), msgs[last]["content"]


def _with_system(prompt: list[Message], system_prompt: str | None) -> list[Message]:
    if system_prompt and not (prompt and prompt[0]["role"] == "system"):
        return [{"role": "system", "content": system_prompt}, *prompt]
    return prompt


def completion_ids(
    tokenizer: Any, prompt: Sequence[Message], completion: Sequence[Message], *, max_length: int | None = None
) -> tuple[list[int], int]:
    """Token ids of prompt + completion through the chat template, and where the completion starts.

    The prompt is tokenised with the generation prompt, as DPO and reward trainers do.
    """
    prompt_ids = tokenizer.apply_chat_template(list(prompt), tokenize=True, add_generation_prompt=True, return_dict=False)
    full = tokenizer.apply_chat_template(list(prompt) + list(completion), tokenize=True, return_dict=False)
    start = len(prompt_ids) if list(full[: len(prompt_ids)]) == list(prompt_ids) else _common_prefix(prompt_ids, full)
    if max_length is not None:
        full = full[:max_length]
    return list(full), min(start, len(full))


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
