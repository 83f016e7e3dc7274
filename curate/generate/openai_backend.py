"""The ``openai`` backend: any OpenAI-compatible ``/v1/chat/completions`` server.

vLLM (``vllm serve``), TGI, llama.cpp's server, Ollama and ``curate serve`` all speak it. The
official ``openai`` client does the HTTP: a timeout per request, and retries with exponential
backoff after a 429, a 5xx or a connection error. Requests run ``concurrency`` at a time.

The key follows the credentials rule (:mod:`curate.credentials`): it comes only from
``OPENAI_API_KEY`` and is sent only to ``OPENAI_BASE_URL``. The client is always given the URL
and the headers explicitly, so it never falls back to its own reading of the environment for
them; without a key the request carries no ``Authorization`` header at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any

from curate.credentials import Credentials
from curate.errors import GenerationError
from curate.extras import require_extra

from .base import Generator, Prompt
from .config import GeneratorConfig, Sampling

__all__ = ["OpenAIGenerator"]

logger = logging.getLogger(__name__)


class OpenAIGenerator(Generator):
    """Completions from an OpenAI-compatible server.

    Parameters
    ----------
    model
        The ``model`` field of each request (for ``curate serve``: an adapter name).
    url
        Base URL of the server, e.g. ``http://127.0.0.1:8000/v1``.
    key
        API key sent as ``Authorization: Bearer``; ``None`` sends no ``Authorization`` header.
    sampling
        Decoding used when :meth:`generate` gets none.
    concurrency
        Requests in flight at once.
    timeout_s
        Seconds to wait for one response.
    max_retries
        Retries (exponential backoff) after a 429, a 5xx or a connection error.
    progress
        Called with the number of prompts finished after each one; ``None`` reports nothing.
    """

    def __init__(
        self,
        model: str,
        *,
        url: str,
        key: str | None = None,
        sampling: Sampling | None = None,
        concurrency: int = 4,
        timeout_s: float = 60.0,
        max_retries: int = 3,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        require_extra("generate", what="The `openai` generation backend")
        import openai

        self.name, self.model, self.url = f"openai:{model}", model, url
        self.sampling = sampling or Sampling()
        self.concurrency, self.timeout_s, self.max_retries = concurrency, timeout_s, max_retries
        self.progress = progress
        # Every header the client might take from the environment is set here or omitted per
        # request: OPENAI_CUSTOM_HEADERS, OPENAI_ORG_ID and OPENAI_PROJECT_ID never reach the server.
        self._client = openai.OpenAI(
            base_url=url,
            api_key=key or "no-key",
            admin_api_key="",
            organization="",
            project="",
            webhook_secret="",
            timeout=timeout_s,
            max_retries=max_retries,
            default_headers={"Authorization": f"Bearer {key or 'no-key'}"},
        )
        omit = openai.Omit()
        self._headers: dict[str, Any] = {"OpenAI-Organization": omit, "OpenAI-Project": omit}
        if key is None:
            self._headers["Authorization"] = omit

    @classmethod
    def from_config(cls, config: GeneratorConfig, *, env: Mapping[str, str]) -> OpenAIGenerator:
        """Resolve the URL and key with the credentials rule; log once when the key is withheld."""
        creds = Credentials.resolve("openai", env=env, url_from_file=config.url)
        if creds.note:
            logger.warning(creds.note)
        return cls(
            config.model,
            url=creds.url,
            key=creds.key,
            sampling=config.sampling,
            concurrency=config.concurrency,
            timeout_s=config.timeout_s,
            max_retries=config.max_retries,
        )

    def generate(self, prompts: Sequence[Prompt], *, n: int = 1, sampling: Sampling | None = None) -> list[list[str]]:
        """Return ``n`` completions per prompt (see :meth:`Generator.generate`).

        Raises
        ------
        GenerationError
            The server is down or slow past ``timeout_s`` (after the retries), or refused a request
            (its message is included). The first failure stops the remaining requests.
        """
        cfg = sampling or self.sampling
        out: list[list[str]] = [[] for _ in prompts]
        if not prompts:
            return out
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="curate-openai") as pool:
            futures = {pool.submit(self._complete, p, n=n, sampling=cfg): i for i, p in enumerate(prompts)}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                failed = next((f for f in done if f.exception() is not None), None)
                if failed is not None:
                    for f in pending:
                        f.cancel()
                    raise failed.exception()  # type: ignore[misc]
                for f in done:
                    out[futures[f]] = f.result()
                if self.progress is not None:
                    self.progress(len(done))
        return out

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def _complete(self, prompt: Prompt, *, n: int, sampling: Sampling) -> list[str]:
        """``n`` answers to one prompt: ask for ``n`` at once, then ask again for what a server left out."""
        messages = [{"role": m["role"], "content": m["content"] or ""} for m in prompt]
        if not sampling.do_sample:  # greedy: one request, the same answer n times
            return self._request(messages, n=1, sampling=sampling, attempt=0) * n
        answers: list[str] = []
        for attempt in range(n):  # a server that ignores `n` answers once per request
            got = self._request(messages, n=n - len(answers), sampling=sampling, attempt=attempt)
            answers += got
            if len(answers) >= n:
                break
        return answers[:n]

    def _request(self, messages: list[dict[str, Any]], *, n: int, sampling: Sampling, attempt: int) -> list[str]:
        import openai

        params: dict[str, Any] = {"max_tokens": sampling.max_new_tokens, "n": n}
        if sampling.do_sample:
            # each repeat gets its own seed, so a server that ignores `n` still returns different samples
            params.update(temperature=sampling.temperature, top_p=sampling.top_p, seed=sampling.seed + attempt)
        else:
            params.update(temperature=0.0)
        try:
            response = self._client.chat.completions.create(
                model=self.model, messages=messages, extra_headers=self._headers, **params
            )
        except openai.APITimeoutError:
            raise GenerationError(
                f"The OpenAI-compatible server at {self.url} did not answer within {self.timeout_s:g} s "
                f"({self.max_retries} retries); raise `timeout_s` or check the server."
            ) from None
        except openai.APIConnectionError as err:
            raise GenerationError(
                f"Cannot reach the OpenAI-compatible server at {self.url} ({_cause(err)}) after "
                f"{self.max_retries} retries; start it or fix `url` / OPENAI_BASE_URL."
            ) from None
        except openai.APIStatusError as err:
            raise GenerationError(
                f"The OpenAI-compatible server at {self.url} refused a request for model {self.model!r}: "
                f"HTTP {err.status_code}: {_server_message(err)}"
            ) from None
        if not response.choices:
            raise GenerationError(
                f"The OpenAI-compatible server at {self.url} returned no choices for model {self.model!r}."
            )
        return [(c.message.content or "").strip() for c in sorted(response.choices, key=lambda c: c.index)]


def _cause(err: BaseException) -> str:
    """The innermost reason of a connection error (e.g. ``Connection refused``)."""
    while err.__cause__ is not None or err.__context__ is not None:
        err = err.__cause__ or err.__context__  # type: ignore[assignment]
    return str(err) or type(err).__name__


def _server_message(err: Any) -> str:
    """The server's own words: OpenAI's ``{"error": {"message"}}``, FastAPI's ``{"detail"}``, or the body."""
    body = err.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return str(inner.get("message") or inner.get("detail") or body)
        return str(inner)
    return str(body or err.message)
