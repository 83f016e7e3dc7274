"""The ``transformers`` backend: a local model folder or a run from the registry, in this process.

Prompts go through the tokenizer's chat template, are sorted by length and left-padded in
batches of ``sampling.batch_size``, and the answers are put back in prompt order, so batching
never changes a greedy answer. Sampling is seeded from ``sampling.seed``; the global random
state is restored afterwards, so generating never shifts the randomness of the code around it.

Runs load through :func:`curate.evaluate.models.load_model` (full weights, a PEFT adapter on its
base, bottleneck adapters), the same loader ``curate eval`` uses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from curate.errors import GenerationError
from curate.extras import require_extra

from .base import Generator, Prompt
from .config import GeneratorConfig, Sampling

__all__ = ["TransformersGenerator", "seeded"]


class TransformersGenerator(Generator):
    """Completions from a causal LM already in memory.

    Parameters
    ----------
    model
        A causal LM or a PEFT wrapper around one (left as it is: device, dtype, training flag).
    tokenizer
        Its tokenizer, with a chat template. Its padding side and pad token are restored after each call.
    name
        What the generator is called in lineage and stats (a run id or model folder).
    sampling
        Decoding used when :meth:`generate` gets none; ``None`` means greedy with the defaults.
    progress
        Called with the number of prompts finished after each batch; ``None`` reports nothing.

    Examples
    --------
    >>> gen = TransformersGenerator.from_config(GeneratorConfig(model="runs/sft-lora-0001"))  # doctest: +SKIP
    >>> gen.generate([[{"role": "user", "content": "Hi"}]], n=2)  # doctest: +SKIP
    [['Hello! How can I help?', 'Hello! How can I help?']]
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        sampling: Sampling | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.model, self.tokenizer, self.name = model, tokenizer, name
        self.sampling = sampling or Sampling()
        self.progress = progress

    @classmethod
    def from_config(cls, config: GeneratorConfig) -> TransformersGenerator:
        """Load ``config.model`` (a run id under ``config.runs_root``, a run folder or a model folder)."""
        require_extra("train", what="The `transformers` generation backend")
        from curate.evaluate.models import load_model, resolve_target

        ref = resolve_target(config.model, runs_root=config.runs_root)
        if ref.role != "causal_lm":
            raise GenerationError(
                f"{config.model} is a {ref.role.replace('_', ' ')} run, not a causal LM; generation needs a model "
                "that writes text (an sft / dpo / ... run, or its base model)."
            )
        loaded = load_model(ref)
        return cls(loaded.model, loaded.tokenizer, name=ref.name, sampling=config.sampling)

    def generate(self, prompts: Sequence[Prompt], *, n: int = 1, sampling: Sampling | None = None) -> list[list[str]]:
        """Return ``n`` completions per prompt (see :meth:`Generator.generate`).

        Greedy decoding runs once per prompt and repeats its answer ``n`` times; sampling asks
        ``model.generate`` for ``n`` sequences per prompt (``num_return_sequences``).
        """
        from curate.evaluate._inference import inference

        cfg = sampling or self.sampling
        texts = [self.chat_text(p) for p in prompts]
        order = self._by_length(texts)
        per_prompt = n if cfg.do_sample else 1
        kwargs = self.decoding(cfg, num_return_sequences=per_prompt)
        device = next(self.model.parameters()).device
        out: list[list[str]] = [[] for _ in prompts]
        with _left_padded(self.tokenizer) as pad_id, seeded(cfg, device=device):
            for start in range(0, len(order), cfg.batch_size):
                idx = order[start : start + cfg.batch_size]
                batch = [texts[i] for i in idx]
                enc = self.tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False)
                with inference(self.model):
                    ids = self.model.generate(**enc.to(device), **kwargs, pad_token_id=pad_id)
                answers = self.tokenizer.batch_decode(ids[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
                for j, i in enumerate(idx):
                    mine = [a.strip() for a in answers[j * per_prompt : (j + 1) * per_prompt]]
                    out[i] = mine if cfg.do_sample else mine * n
                if self.progress is not None:
                    self.progress(len(idx))
        return out

    def chat_text(self, prompt: Prompt) -> str:
        messages = [{"role": m["role"], "content": m["content"] or ""} for m in prompt]
        if self.tokenizer.chat_template is None:
            raise GenerationError(
                f"The tokenizer of {self.name} has no chat template, so prompts cannot be rendered; save one with "
                "the model (tokenizer.chat_template = ...; tokenizer.save_pretrained(...))."
            )
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def _by_length(self, texts: list[str]) -> list[int]:
        """Prompt indices, shortest first (batches of similar length need little padding)."""
        if not texts:
            return []
        lengths = [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]
        return sorted(range(len(texts)), key=lengths.__getitem__)

    @staticmethod
    def decoding(cfg: Sampling, *, num_return_sequences: int) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"max_new_tokens": cfg.max_new_tokens, "do_sample": cfg.do_sample}
        if cfg.do_sample:
            kwargs.update(temperature=cfg.temperature, top_p=cfg.top_p, top_k=0)
            kwargs["num_return_sequences"] = num_return_sequences
        else:  # unset the model's own sampling defaults, which greedy decoding would warn about
            kwargs.update(temperature=None, top_p=None, top_k=None)
        return kwargs


@contextmanager
def _left_padded(tokenizer: Any) -> Iterator[int]:
    """Left padding (and the EOS token as pad when there is none) for the block; yields the pad id."""
    side, had_pad = tokenizer.padding_side, tokenizer.pad_token is not None
    tokenizer.padding_side = "left"
    if not had_pad:
        tokenizer.pad_token = tokenizer.eos_token
    try:
        yield tokenizer.pad_token_id
    finally:
        tokenizer.padding_side = side
        if not had_pad:
            tokenizer.pad_token = None


@contextmanager
def seeded(cfg: Sampling, *, device: Any) -> Iterator[None]:
    """Seed torch for sampling and restore the global random state (CPU and the model's GPU) afterwards."""
    import torch

    if not cfg.do_sample:
        yield
        return
    devices = [torch.cuda.current_device() if device.index is None else device.index] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(cfg.seed)
        yield
