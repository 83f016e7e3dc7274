"""One generation layer for every model output in curate: stages, the loop and evaluation.

``load_generator(GeneratorConfig(...)).generate(prompts, n=2)`` returns ``n`` completions per
prompt from a local model or run (``transformers``), an OpenAI-compatible server (``openai``)
or in-process vLLM (``vllm``).
"""

from .base import Generator, Prompt, load_generator
from .config import Backend, GeneratorConfig, Sampling

__all__ = ["Backend", "Generator", "GeneratorConfig", "Prompt", "Sampling", "load_generator"]
