"""The ``vllm`` backend: in-process vLLM on a CUDA GPU (continuous batching, paged attention).

Needs ``pip install vllm`` and a CUDA GPU; without either, building the generator raises one
:class:`~curate.errors.GenerationError` saying which is missing. A run holding a PEFT LoRA
adapter is served on its base model with vLLM's LoRA support (``enable_lora``); full-weight
runs and model folders load directly. Not exercised in CI (docs/generation.md).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from curate.errors import GenerationError

from .base import Generator, Prompt
from .config import GeneratorConfig, Sampling

__all__ = ["VLLMGenerator"]


def _require_vllm() -> None:
    if importlib.util.find_spec("vllm") is None:
        raise GenerationError(
            "vLLM is not installed: pip install vllm (needs a CUDA GPU). Without a GPU use `backend: transformers`, "
            "or `backend: openai` against a `vllm serve` on a GPU machine."
        )
    import torch

    if not torch.cuda.is_available():
        raise GenerationError(
            "vLLM is installed but there is no CUDA GPU (torch.cuda.is_available() is False); use "
            "`backend: transformers` here, or `backend: openai` against a `vllm serve` on a GPU machine."
        )


class VLLMGenerator(Generator):
    """Completions from an in-process ``vllm.LLM``.

    Parameters
    ----------
    llm
        A ``vllm.LLM``.
    name
        What the generator is called in lineage and stats.
    sampling
        Decoding used when :meth:`generate` gets none; ``None`` means greedy with the defaults.
    lora
        A ``vllm.lora.request.LoRARequest`` applied to every request; ``None`` uses the plain model.
    """

    def __init__(self, llm: Any, *, name: str, sampling: Sampling | None = None, lora: Any = None) -> None:
        self.llm, self.name, self.lora = llm, name, lora
        self.sampling = sampling or Sampling()

    @classmethod
    def from_config(cls, config: GeneratorConfig) -> VLLMGenerator:
        """Check for vLLM and a GPU, then load ``config.model`` (run id, run folder or model folder)."""
        _require_vllm()
        from vllm import LLM
        from vllm.lora.request import LoRARequest

        from curate.evaluate.models import resolve_target

        ref = resolve_target(config.model, runs_root=config.runs_root, role="causal_lm")
        path = ref.path
        if isinstance(path, Path) and (path / "adapter_config.json").is_file():
            if ref.base_model is None:
                raise GenerationError(f"{config.model} holds a LoRA adapter but its run manifest names no base model.")
            llm = LLM(model=ref.base_model, tokenizer=str(path), enable_lora=True, seed=config.sampling.seed)
            return cls(llm, name=ref.name, sampling=config.sampling, lora=LoRARequest(ref.name, 1, str(path)))
        return cls(LLM(model=str(path), seed=config.sampling.seed), name=ref.name, sampling=config.sampling)

    def generate(self, prompts: Sequence[Prompt], *, n: int = 1, sampling: Sampling | None = None) -> list[list[str]]:
        """Return ``n`` completions per prompt (see :meth:`Generator.generate`); vLLM batches internally."""
        from vllm import SamplingParams

        cfg = sampling or self.sampling
        params = SamplingParams(
            n=n if cfg.do_sample else 1,
            temperature=cfg.temperature if cfg.do_sample else 0.0,
            top_p=cfg.top_p if cfg.do_sample else 1.0,
            max_tokens=cfg.max_new_tokens,
            seed=cfg.seed if cfg.do_sample else None,
        )
        messages = [[{"role": m["role"], "content": m["content"] or ""} for m in p] for p in prompts]
        results = self.llm.chat(messages, params, lora_request=self.lora, use_tqdm=False)
        out = [[c.text.strip() for c in r.outputs] for r in results]
        if self.progress is not None:
            self.progress(len(prompts))
        return out if cfg.do_sample else [answers * n for answers in out]
