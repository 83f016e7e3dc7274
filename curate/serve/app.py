"""The FastAPI app of ``curate serve``: OpenAI's ``/v1/models`` and ``/v1/chat/completions``, and ``/v1/feedback``.

Responses, streamed chunks and errors have the OpenAI API's shapes, so the official client and
every tool built on it work unchanged. Each completion is logged with its request id
(``chatcmpl-...``) in a :class:`~curate.serve.feedback.FeedbackLog`.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
import uuid
from collections.abc import Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse

from curate.generate.config import Sampling

from .feedback import FeedbackLog
from .models import Completion, ServedModels
from .schemas import ChatRequest, FeedbackRequest

__all__ = ["DEFAULT_MAX_TOKENS", "create_app"]

log = logging.getLogger(__name__)

DEFAULT_MAX_TOKENS = 256  # when a request sets neither max_tokens nor max_completion_tokens


def create_app(models: ServedModels, feedback: FeedbackLog) -> FastAPI:
    """The app serving ``models``; ``feedback`` starts flushing with the app and flushes a last time when it stops."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        feedback.start()
        yield
        feedback.close()

    app = FastAPI(title="curate serve", lifespan=lifespan)
    created = int(time.time())

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"{where}: {first.get('msg', 'invalid value')}" if where else str(first.get("msg", "invalid request"))
        return _error(422, message, param=where or None, code="invalid_value")

    @app.get("/v1/models")
    def list_models() -> dict[str, Any]:
        data = [{"id": name, "object": "model", "created": created, "owned_by": "curate"} for name in models.names]
        return {"object": "list", "data": data}

    @app.post("/v1/chat/completions", response_model=None)
    def chat_completions(body: ChatRequest) -> JSONResponse | StreamingResponse | dict[str, Any]:
        if body.model not in models.names:
            message = f"The model {body.model!r} does not exist; this server serves: {', '.join(models.names)}."
            return _error(404, message, param="model", code="model_not_found")
        if body.stream and body.n > 1:
            message = "stream with n > 1 is not supported by curate serve; ask n = 1."
            return _error(422, message, param="n", code="invalid_value")
        request_id, start = f"chatcmpl-{uuid.uuid4().hex}", time.perf_counter()
        messages = [m.plain() for m in body.messages]
        sampling = _sampling(body)
        if body.stream:
            return StreamingResponse(
                _sse(models, body, messages, sampling, request_id=request_id, start=start, feedback=feedback),
                media_type="text/event-stream",
            )
        completion = models.complete(body.model, messages, sampling=sampling, n=body.n)
        feedback.record(_rows(body, messages, sampling, completion, request_id=request_id, start=start, stream=False))
        choices = [
            {"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": reason, "logprobs": None}
            for i, (text, reason) in enumerate(zip(completion.texts, completion.finish_reasons, strict=True))
        ]
        return {"id": request_id, "object": "chat.completion", "created": int(time.time()), "model": body.model,
                "choices": choices, "usage": _usage(completion)}  # fmt: skip

    @app.post("/v1/feedback", response_model=None)
    def post_feedback(body: FeedbackRequest) -> JSONResponse | dict[str, Any]:
        fields = body.model_dump(exclude={"id"}, exclude_none=True)
        if not feedback.feedback(body.id, fields):
            message = f"No completion with id {body.id!r} was logged by this server."
            return _error(404, message, param="id", code="not_found")
        return {"id": body.id, "object": "feedback", "recorded": fields}

    return app


def _sampling(body: ChatRequest) -> Sampling:
    greedy = body.temperature == 0.0
    return Sampling(
        max_new_tokens=body.max_completion_tokens or body.max_tokens or DEFAULT_MAX_TOKENS,
        do_sample=not greedy,
        temperature=1.0 if greedy else body.temperature,
        top_p=body.top_p,
        seed=body.seed if body.seed is not None else secrets.randbelow(2**31),
    )


def _sse(
    models: ServedModels,
    body: ChatRequest,
    messages: list[dict[str, str]],
    sampling: Sampling,
    *,
    request_id: str,
    start: float,
    feedback: FeedbackLog,
) -> Iterator[str]:
    """Server-sent events as OpenAI sends them: a role chunk, content chunks, a finish chunk, ``[DONE]``."""
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        payload = {"id": request_id, "object": "chat.completion.chunk", "created": created, "model": body.model,
                   "choices": [choice]}  # fmt: skip
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    stream = models.stream(body.model, messages, sampling=sampling)
    for piece in stream:
        yield chunk({"content": piece})
    completion = stream.completion
    assert completion is not None  # set when the iteration above ends
    feedback.record(_rows(body, messages, sampling, completion, request_id=request_id, start=start, stream=True))
    yield chunk({}, completion.finish_reasons[0])
    yield "data: [DONE]\n\n"


def _rows(
    body: ChatRequest,
    messages: list[dict[str, str]],
    sampling: Sampling,
    completion: Completion,
    *,
    request_id: str,
    start: float,
    stream: bool,
) -> list[dict[str, Any]]:
    """One ``feedback`` record per choice: the request, the answer, and how it was made in ``meta``."""
    latency = round(time.perf_counter() - start, 4)
    ts = datetime.now(UTC).isoformat(timespec="milliseconds")
    params = {"max_tokens": sampling.max_new_tokens, "temperature": body.temperature, "top_p": body.top_p,
              "n": body.n, "seed": sampling.seed}  # fmt: skip
    log.info("serve: %s model=%s choices=%d latency=%.3fs", request_id, body.model, len(completion.texts), latency)
    return [
        {
            "prompt": messages,
            "completion": [{"role": "assistant", "content": text}],
            "feedback": None,
            "model": body.model,
            "ts": ts,
            "source": "curate-serve",
            "meta": {"request_id": request_id, "choice": i, "finish_reason": reason, "sampling": params,
                     "latency_s": latency, "stream": stream, "usage": _usage(completion)},  # fmt: skip
        }
        for i, (text, reason) in enumerate(zip(completion.texts, completion.finish_reasons, strict=True))
    ]


def _usage(completion: Completion) -> dict[str, int]:
    total = completion.prompt_tokens + completion.completion_tokens
    return {"prompt_tokens": completion.prompt_tokens, "completion_tokens": completion.completion_tokens,
            "total_tokens": total}  # fmt: skip


def _error(status: int, message: str, *, param: str | None, code: str) -> JSONResponse:
    kind = "not_found_error" if status == 404 else "invalid_request_error"
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}}, status_code=status)
