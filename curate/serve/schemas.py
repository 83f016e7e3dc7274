"""The request bodies ``curate serve`` accepts (OpenAI's chat-completions subset, and feedback)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from curate.formats.conversions import message_text

__all__ = ["ChatMessage", "ChatRequest", "FeedbackRequest"]


class ChatMessage(BaseModel):
    """One message; content as text or OpenAI's typed parts (their text parts are joined)."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None

    @field_validator("content")
    @classmethod
    def _text_only(cls, content: str | list[dict[str, Any]] | None) -> str:
        text = message_text(content) if content is not None else ""
        if not isinstance(text, str):
            raise ValueError("only text content parts are supported (no images or audio)")
        return text

    def plain(self) -> dict[str, str]:
        """``{role, content}`` as the chat template and the feedback record take it (developer -> system)."""
        return {"role": "system" if self.role == "developer" else self.role, "content": str(self.content)}


class ChatRequest(BaseModel):
    """``POST /v1/chat/completions``: the fields curate serve honours; other OpenAI fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(description="A served name: the base model's, or an adapter's run id (GET /v1/models).")
    messages: list[ChatMessage] = Field(min_length=1, description="The conversation so far.")
    max_tokens: int | None = Field(None, ge=1, description="Most tokens generated; `None` uses the server's default.")
    max_completion_tokens: int | None = Field(None, ge=1, description="OpenAI's newer name for `max_tokens`.")
    temperature: float = Field(1.0, ge=0.0, le=2.0, description="0 is greedy decoding (deterministic).")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    n: int = Field(1, ge=1, le=16, description="Answers per request.")
    seed: int | None = Field(
        None, description="Sampling seed; `None` draws one (logged, so the answer can be replayed)."
    )
    stream: bool = Field(False, description="Answer with server-sent events, one chunk per piece of text.")

    @field_validator("messages")
    @classmethod
    def _has_user_turn(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        if not any(m.role == "user" for m in messages):
            raise ValueError("messages has no user turn")
        return messages


class FeedbackRequest(BaseModel):
    """``POST /v1/feedback``: what a user thought of one completion; every field but ``id`` is optional."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, description="The completion's id (`chatcmpl-...`), as its response gave it.")
    thumbs: Literal["up", "down"] | None = Field(None, description="Thumbs up or down.")
    rating: int | None = Field(None, ge=1, le=5, description="A 1-5 rating.")
    escalated: bool | None = Field(None, description="The conversation was handed to a human.")
    correction: str | None = Field(None, description="The answer the user wanted instead.")
