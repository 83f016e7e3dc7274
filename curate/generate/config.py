"""The configuration of a generator and of its decoding, shared by stages, the loop and evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["Backend", "GeneratorConfig", "Sampling"]

Backend = Literal["transformers", "openai", "vllm"]


class Sampling(BaseModel):
    """How text is decoded: greedy by default (deterministic), or sampled with a seed."""

    model_config = ConfigDict(extra="forbid")

    max_new_tokens: int = Field(64, ge=1, description="Most tokens generated per answer.")
    do_sample: bool = Field(False, description="Sample instead of greedy decoding; greedy is deterministic.")
    temperature: float = Field(1.0, gt=0.0, description="Sampling temperature; only used when `do_sample`.")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling mass; only used when `do_sample`.")
    seed: int = Field(0, description="Seed of the sampler; only used when `do_sample`.")
    batch_size: int = Field(8, ge=1, description="`transformers` / `vllm`: prompts per generate call (left-padded).")


class GeneratorConfig(BaseModel):
    """Which model produces text, through which backend.

    The same block appears wherever curate generates: the ``generate`` and ``augment`` stages,
    the loop, and evaluation.
    """

    model_config = ConfigDict(extra="forbid")

    backend: Backend = Field(
        "transformers",
        description="`transformers`: a local model folder or a run from the registry (full weights or a PEFT "
        "adapter on its base). `openai`: any OpenAI-compatible /v1/chat/completions server (vLLM, TGI, "
        "llama.cpp, Ollama, `curate serve`). `vllm`: in-process vLLM (needs vLLM and a GPU).",
    )
    model: str = Field(
        description="`transformers` / `vllm`: a run id, run folder or model folder. `openai`: the `model` field "
        "sent to the server (an adapter name for `curate serve`)."
    )
    url: str | None = Field(
        None,
        description="`openai` only: base URL of the server (e.g. http://127.0.0.1:8000/v1). `None` uses "
        "OPENAI_BASE_URL. The key (OPENAI_API_KEY) is sent only to OPENAI_BASE_URL, never to a URL written here "
        "that differs from it.",
    )
    runs_root: str = Field("runs", description="Folder of the run registry, for a `model` given as a run id.")
    sampling: Sampling = Field(default_factory=Sampling, description="Decoding settings.")
    concurrency: int = Field(4, ge=1, description="`openai` only: requests in flight at once.")
    timeout_s: float = Field(60.0, gt=0, description="`openai` only: seconds to wait for one response.")
    max_retries: int = Field(
        3, ge=0, description="`openai` only: retries (with exponential backoff) after a 429 / 5xx / connection error."
    )

    @model_validator(mode="after")
    def _url_is_for_openai(self) -> GeneratorConfig:
        if self.url is not None and self.backend != "openai":
            raise ValueError(
                f"`url` is for `backend: openai`; the `{self.backend}` backend loads `model` in this process "
                "(remove `url`, or set `backend: openai`)"
            )
        return self

    def resolved(self, base_dir: Path) -> GeneratorConfig:
        """This config with a relative model folder or runs root of a local backend resolved against
        ``base_dir`` (the pipeline's folder); an ``openai`` config is returned unchanged."""
        if self.backend == "openai":
            return self
        runs_root = Path(self.runs_root)
        changes: dict[str, Any] = {"runs_root": str(runs_root if runs_root.is_absolute() else base_dir / runs_root)}
        if not Path(self.model).is_absolute() and (base_dir / self.model).exists():
            changes["model"] = str(base_dir / self.model)
        return self.model_copy(update=changes)
