"""The one interface every backend implements, and the factory that builds a backend from its config."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .config import GeneratorConfig, Sampling

__all__ = ["Generator", "Prompt", "load_generator"]

Prompt = Sequence[Mapping[str, Any]]  # a message list ending before the assistant turn to generate


class Generator(ABC):
    """Produces ``n`` completions per prompt.

    Attributes
    ----------
    name
        What the generator is called in lineage, stats and ``meta`` (a run id, model folder or
        ``openai:<model>``).
    sampling
        The decoding used when :meth:`generate` is called without one.
    progress
        Called with the number of prompts just finished, as generation advances (e.g. a rich
        ``Progress.advance``); ``None`` reports nothing. Backends that cannot report leave it unused.
    """

    name: str
    sampling: Sampling
    progress: Callable[[int], None] | None = None

    @abstractmethod
    def generate(self, prompts: Sequence[Prompt], *, n: int = 1, sampling: Sampling | None = None) -> list[list[str]]:
        """Return ``n`` completions for each prompt, aligned with ``prompts``.

        Parameters
        ----------
        prompts
            Message lists (``{"role", "content"}``) ending before the assistant turn.
        n
            Completions per prompt. With greedy decoding the ``n`` answers are identical.
        sampling
            Decoding for this call; ``None`` uses :attr:`sampling`.

        Returns
        -------
        list of list of str
            ``out[i]`` holds the ``n`` completions of ``prompts[i]`` (stripped, no special tokens).
            A completion that failed is raised as :class:`curate.errors.GenerationError`, never
            returned as an empty string; an empty string means the model produced nothing.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release models, sessions or threads held by the generator."""


def load_generator(config: GeneratorConfig, *, env: Mapping[str, str] | None = None) -> Generator:
    """Build the backend ``config.backend`` names.

    Parameters
    ----------
    config
        Backend, model and decoding.
    env
        Environment variables (the CLI passes ``os.environ``); the ``openai`` backend reads
        ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY`` here through :class:`curate.credentials.Credentials`.
        ``None`` means an empty environment.
    """
    env = env or {}
    if config.backend == "transformers":
        from .transformers_backend import TransformersGenerator

        return TransformersGenerator.from_config(config)
    if config.backend == "openai":
        from .openai_backend import OpenAIGenerator

        return OpenAIGenerator.from_config(config, env=env)
    from .vllm_backend import VLLMGenerator

    return VLLMGenerator.from_config(config)
