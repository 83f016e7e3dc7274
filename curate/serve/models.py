"""One base model with its LoRA adapters in memory, answering one request at a time.

The base loads once; each adapter run attaches with PEFT (``PeftModel.from_pretrained`` for the
first, ``load_adapter`` for the rest). A request names a ``model``: an adapter is switched in with
``set_adapter``, the base answers with the adapters disabled. A lock makes the switch and the
generation one step, so two requests never mix adapters.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from curate.errors import GenerationError
from curate.generate.config import Sampling
from curate.generate.transformers_backend import TransformersGenerator, seeded

from ._sources import ServedSources

__all__ = ["Completion", "ServedModels", "TokenStream"]


@dataclass
class Completion:
    """The answers to one request and their token counts."""

    texts: list[str]
    finish_reasons: list[str]  # "stop" (end of turn) or "length" (max_tokens reached)
    prompt_tokens: int
    completion_tokens: int


class ServedModels:
    """The models ``curate serve`` answers for: the base under its name and each adapter under its run id.

    Parameters
    ----------
    model
        The base model, or a ``PeftModel`` holding every adapter.
    tokenizer
        Its tokenizer, with a chat template.
    sources
        Names and folders (from :func:`curate.serve.resolve_sources`).
    """

    def __init__(self, model: Any, tokenizer: Any, *, sources: ServedSources) -> None:
        self.model, self.tokenizer, self.sources = model, tokenizer, sources
        # PEFT adapter names are module keys, so run ids (which may hold '.') get short internal names
        self._adapter = {name: f"adapter{i}" for i, name in enumerate(sources.adapters)}
        self._lock = threading.Lock()
        # renders prompts exactly as every other generation in curate does (chat template, its error)
        self._renderer = TransformersGenerator(model, tokenizer, name=sources.base_name)

    @classmethod
    def load(cls, sources: ServedSources) -> ServedModels:
        """Load the base once and attach every adapter; on a GPU when there is one (bfloat16), else CPU float32."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        cuda = torch.cuda.is_available()
        dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
        model = AutoModelForCausalLM.from_pretrained(sources.base, dtype=dtype)
        adapters = list(sources.adapters.values())
        tokenizer_dir = sources.base if _has_tokenizer(sources.base) or not adapters else str(adapters[0])
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
        served = cls(model, tokenizer, sources=sources)
        served._encode([{"role": "user", "content": "hi"}])  # no chat template: fail now, not at the first request
        if adapters:
            from peft import PeftModel

            names = list(served._adapter.values())
            model = PeftModel.from_pretrained(model, str(adapters[0]), adapter_name=names[0])
            for name, folder in zip(names[1:], adapters[1:], strict=True):
                model.load_adapter(str(folder), adapter_name=name)
            served.model = model
        served.model.to("cuda" if cuda else "cpu").eval()
        return served

    @property
    def names(self) -> list[str]:
        """The ``model`` names requests may use: the base first, then the adapters."""
        return self.sources.names

    def complete(
        self, name: str, messages: Sequence[Mapping[str, str]], *, sampling: Sampling, n: int = 1
    ) -> Completion:
        """``n`` answers of model ``name`` to one conversation (greedy answers are computed once and repeated)."""
        inputs = self._encode(messages)
        runs = 1 if not sampling.do_sample else n
        with self._lock, self._active(name):
            out = self._generate(inputs, sampling=sampling, n=runs)
        new = out[:, inputs["input_ids"].shape[1] :]
        texts, reasons, tokens = [], [], 0
        for row in new:
            ids, reason = self._answer(row)
            texts.append(self.tokenizer.decode(ids, skip_special_tokens=True).strip())
            reasons.append(reason)
            tokens += len(ids)
        if runs < n:
            texts, reasons, tokens = texts * n, reasons * n, tokens * n
        return Completion(texts, reasons, prompt_tokens=int(inputs["input_ids"].shape[1]), completion_tokens=tokens)

    def stream(self, name: str, messages: Sequence[Mapping[str, str]], *, sampling: Sampling) -> TokenStream:
        """One answer of model ``name``, as text pieces while it is generated (iterate the result)."""
        return TokenStream(self, name, self._encode(messages), sampling=sampling)

    # -- internals -------------------------------------------------------------------------

    def _answer(self, row: Any) -> tuple[list[int], str]:
        """Generated ids up to the end-of-turn token, and the finish reason (``stop`` or ``length``)."""
        eos = self.model.generation_config.eos_token_id
        eos = [*(eos if isinstance(eos, list) else [eos]), self.tokenizer.eos_token_id]
        stops = {int(i) for i in eos if i is not None}
        ids = [int(t) for t in row]
        end = next((i for i, t in enumerate(ids) if t in stops), None)
        return (ids, "length") if end is None else (ids[:end], "stop")

    def _encode(self, messages: Sequence[Mapping[str, str]]) -> Any:
        text = self._renderer.chat_text(messages)
        enc = self.tokenizer(text, return_tensors="pt", add_special_tokens=False)
        return {k: v.to(self.model.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}

    @contextmanager
    def _active(self, name: str) -> Iterator[None]:
        if not self._adapter:
            yield
        elif name == self.sources.base_name:
            with self.model.disable_adapter():
                yield
        else:
            self.model.set_adapter(self._adapter[name])
            yield

    def _generate(self, inputs: Any, *, sampling: Sampling, n: int, **extra: Any) -> Any:
        """``model.generate`` with the generation layer's decoding and seeding (global random state restored)."""
        import torch

        kwargs = TransformersGenerator.decoding(sampling, num_return_sequences=n)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        with seeded(sampling, device=self.model.device), torch.no_grad():
            return self.model.generate(**inputs, **kwargs, pad_token_id=pad, **extra)


class TokenStream:
    """Text pieces of one answer as they are generated; :attr:`completion` is set once iteration ends.

    Generation runs in a thread that holds the model's lock; closing the iteration early (a client
    that disconnects) stops it at the next token.
    """

    def __init__(self, models: ServedModels, name: str, inputs: Any, *, sampling: Sampling) -> None:
        self._models, self._name, self._inputs, self._sampling = models, name, inputs, sampling
        self.completion: Completion | None = None

    def __iter__(self) -> Iterator[str]:
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        models, cancel, result = self._models, threading.Event(), {}

        class _Cancelled(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                import torch

                return torch.full((input_ids.shape[0],), cancel.is_set(), dtype=torch.bool, device=input_ids.device)

        streamer = TextIteratorStreamer(models.tokenizer, skip_prompt=True, skip_special_tokens=True)
        stopping = StoppingCriteriaList([_Cancelled()])

        def run() -> None:
            try:
                with models._active(self._name):
                    result["out"] = models._generate(self._inputs, sampling=self._sampling, n=1, streamer=streamer,
                                                     stopping_criteria=stopping)  # fmt: skip
            except Exception as exc:  # noqa: BLE001 - re-raised in the reading thread
                result["error"] = exc
                streamer.end()
            finally:
                models._lock.release()

        models._lock.acquire()
        thread = threading.Thread(target=run, name="curate-serve-stream", daemon=True)
        thread.start()
        try:
            first = True
            for piece in streamer:
                if piece:
                    yield piece.lstrip() if first else piece
                    first = False
        finally:
            cancel.set()
            thread.join()
        if "error" in result:
            raise GenerationError(f"Generation with model {self._name!r} failed: {result['error']}")
        new, reason = models._answer(result["out"][0, self._inputs["input_ids"].shape[1] :])
        self.completion = Completion(
            [models.tokenizer.decode(new, skip_special_tokens=True).strip()], [reason],
            prompt_tokens=int(self._inputs["input_ids"].shape[1]), completion_tokens=len(new),
        )  # fmt: skip


def _has_tokenizer(folder: str) -> bool:
    from pathlib import Path

    return (Path(folder) / "tokenizer_config.json").is_file()
