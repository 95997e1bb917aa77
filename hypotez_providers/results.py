"""What a completion produces: streamed chunks, token usage, and the assembled completion."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from .tools import ToolCall, ToolCallAssembler, ToolCallDelta


class Usage(BaseModel):
    """Token counts as the provider reported them."""

    model_config = ConfigDict(frozen=True)

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class Chunk(BaseModel):
    """One piece of an answer. ``text`` may be empty on a piece that only carries metadata.

    The last pieces of an answer usually carry ``finish_reason`` (``"stop"``, ``"length"``, ...)
    and ``usage``; a provider sends them when it knows them.

    ``rescue`` marks a routed stream's rescue point (see ``docs/routing.md``), on a text-less
    chunk: ``"restart"`` says *discard all text received so far*, the answer starts again from
    ``provider``; ``"continue"`` says the text so far stands and ``provider`` continues it.

    Tool calls stream as ``tool_call_deltas`` (pieces, by index, to render progress); the chunk
    that ends them carries the assembled ``tool_calls`` (to act on whole calls).
    """

    model_config = ConfigDict(frozen=True)

    text: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    model: str | None = None
    rescue: Literal["restart", "continue"] | None = None
    provider: str | None = None
    tool_call_deltas: tuple[ToolCallDelta, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()

    @classmethod
    def trusted(
        cls,
        text: str,
        finish_reason: str | None = None,
        usage: Usage | None = None,
        model: str | None = None,
    ) -> Chunk:
        """A chunk built without validation, from values a codec has already checked.

        Equal to ``Chunk(text=..., finish_reason=..., usage=..., model=...)`` and as frozen, at
        a third of the cost: a stream's hot path builds one per event. The caller vouches for
        the types (``str``, ``str | None``, ``Usage | None``, ``str | None``); anything else is
        the validated constructor's job.
        """
        chunk = _new(cls)
        _set(
            chunk,
            "__dict__",
            {
                "text": text,
                "finish_reason": finish_reason,
                "usage": usage,
                "model": model,
                "rescue": None,
                "provider": None,
                "tool_call_deltas": (),
                "tool_calls": (),
            },
        )
        _set(chunk, "__pydantic_fields_set__", set(_TRUSTED_FIELDS))
        _set(chunk, "__pydantic_extra__", None)
        _set(chunk, "__pydantic_private__", None)
        return chunk


# Chunk.trusted sets what pydantic's constructor sets, past the frozen model's __setattr__.
_new = object.__new__
_set = object.__setattr__
_TRUSTED_FIELDS = frozenset(("text", "finish_reason", "usage", "model"))


class Attempt(BaseModel):
    """One try at one provider during a routed call: what happened and how long it took.

    ``outcome`` is ``"ok"``, ``"failed"`` (``error`` names the error type) or ``"skipped"``
    (``message`` says why: circuit open, no API key, disabled). ``malformed_events`` counts the
    undecodable stream events that were skipped; ``rescue`` is set on an attempt that took over
    a broken stream (``"restart"`` or ``"continue"``); ``retry_after`` is the wait (seconds) a
    failing provider asked for.
    """

    model_config = ConfigDict(frozen=True)

    provider: str
    model: str
    outcome: Literal["ok", "failed", "skipped"]
    error: str | None = None
    status: int | None = None
    message: str | None = None
    duration: float = 0.0
    malformed_events: int = 0
    rescue: Literal["restart", "continue"] | None = None
    retry_after: float | None = None

    def describe(self) -> str:
        """One line: ``openai (gpt-4o-mini): failed, RateLimited, HTTP 429, 0.012s: ...``."""
        parts = [f"{self.provider} ({self.model}): {self.outcome}"]
        if self.error:
            parts.append(self.error)
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.outcome != "skipped":
            parts.append(f"{self.duration:.3f}s")
        if self.rescue:
            parts.append(f"rescue: {self.rescue}")
        if self.malformed_events:
            parts.append(f"{self.malformed_events} undecodable events skipped")
        line = ", ".join(parts)
        return f"{line}: {self.message}" if self.message else line


class Completion(BaseModel):
    """A whole answer: its text, who produced it, why it stopped and what it cost in tokens."""

    model_config = ConfigDict(frozen=True)

    text: str
    model: str
    provider: str
    finish_reason: str | None = None
    usage: Usage | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    attempts: tuple[Attempt, ...] = ()

    def message(self) -> dict[str, Any]:
        """The answer as the assistant message to add to the conversation (tool calls included).

        Send it back with a ``{"role": "tool", "tool_call_id": ..., "content": ...}`` message per
        call to get the final answer, from this provider or any other.
        """
        message: dict[str, Any] = {"role": "assistant", "content": self.text}
        if self.tool_calls:
            message["tool_calls"] = [call.wire() for call in self.tool_calls]
            if not self.text:
                message["content"] = None  # as the vendors write a message that only calls
        return message

    @classmethod
    def from_chunks(
        cls,
        chunks: Iterable[Chunk],
        *,
        model: str,
        provider: str,
        attempts: tuple[Attempt, ...] = (),
    ) -> Completion:
        """Assemble the chunks of one answer; the last finish reason, usage and model win.

        A ``rescue="restart"`` chunk drops what came before it, as a caller must. Tool calls
        are the assembled ones chunks carry, else they are put together from the deltas.
        """
        texts: list[str] = []
        finish_reason: str | None = None
        usage: Usage | None = None
        calls: list[ToolCall] = []
        pieces = ToolCallAssembler()
        for chunk in chunks:
            if chunk.rescue == "restart":
                texts.clear()  # the caller was told to discard the text so far
                finish_reason = usage = None
                calls.clear()
                pieces = ToolCallAssembler()
            texts.append(chunk.text)
            finish_reason = chunk.finish_reason or finish_reason
            usage = chunk.usage or usage
            model = chunk.model or model
            calls.extend(chunk.tool_calls)
            for delta in chunk.tool_call_deltas:
                pieces.add(delta)
        if not calls and pieces:
            calls.extend(pieces.finish())
        return cls(
            text="".join(texts),
            model=model,
            provider=provider,
            finish_reason=finish_reason,
            usage=usage,
            tool_calls=tuple(calls),
            attempts=attempts,
        )
