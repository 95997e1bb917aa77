"""The OpenAI chat-completions wire format, written once for every OpenAI-style provider.

A provider for any endpoint that speaks it (OpenAI itself, Gravityengine, vLLM, llama.cpp's
server, LM Studio, OpenRouter, ...) is a few lines::

    @hookimpl
    def create_completion(model, messages, stream, options, context):
        return openai_chat.chat_completion(context, model, messages, stream, options,
                                           path="/v1/chat/completions")
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import msgspec

from ._json import loads
from .context import ProviderContext
from .errors import MalformedResponse, Overloaded, ProviderError, RateLimited, ServerError
from .options import CompletionOptions
from .results import Chunk, Usage
from .sse import SSEEvent
from .tolerance import StreamStats, skip_malformed, truncated_stream
from .tools import ToolCall, ToolCallAssembler, ToolCallDelta
from .urls import join_url

DONE = "[DONE]"


def build_payload(
    model: str,
    messages: list[dict[str, Any]],
    stream: bool,
    options: CompletionOptions,
    *,
    defaults: Mapping[str, Any] | None = None,
    include_usage: bool = False,
) -> dict[str, Any]:
    """The JSON body of a chat-completions request: ``defaults``, then the caller's options.

    ``include_usage`` asks a streaming answer to end with a usage chunk
    (``stream_options.include_usage``), which not every compatible server understands.
    """
    payload: dict[str, Any] = {"model": model, "messages": messages}
    if defaults:
        payload.update(defaults)
    payload.update(options.wire())
    if stream:
        payload["stream"] = True
        if include_usage:
            payload["stream_options"] = {"include_usage": True}
    return payload


def bearer_headers(context: ProviderContext) -> dict[str, str]:
    """``Authorization: Bearer <key>`` when the provider has a key, else no header."""
    key = context.api_key
    return {"Authorization": f"Bearer {key}"} if key else {}


def chat_completion(
    context: ProviderContext,
    model: str,
    messages: list[dict[str, Any]],
    stream: bool,
    options: CompletionOptions,
    *,
    path: str = "/v1/chat/completions",
    headers: Mapping[str, str] | None = None,
    defaults: Mapping[str, Any] | None = None,
    include_usage: bool = False,
) -> Iterator[Chunk]:
    """POST a chat completion to ``join_url(context.base_url, path)``; yield its chunks.

    Streams over server-sent events when ``stream`` is true, else yields one chunk. ``headers``
    are sent as well as the bearer key header (``bearer_headers``).
    """
    payload = build_payload(
        model, messages, stream, options, defaults=defaults, include_usage=include_usage
    )
    all_headers = bearer_headers(context)
    if headers:
        all_headers.update(headers)
    url = join_url(context.base_url, path)
    if stream:
        return parse_stream(
            context.name,
            context.transport.post_sse(url, payload, headers=all_headers),
            stats=context.stats,
        )
    return iter(
        (
            parse_response(
                context.name, context.transport.post_json(url, payload, headers=all_headers)
            ),
        )
    )


def parse_response(provider: str, body: Any) -> Chunk:
    """The one chunk of a non-streamed answer: its text, tool calls, finish reason, usage, model.

    A tool-calling answer has ``message.tool_calls`` and usually null content; its finish
    reason is ``"tool_calls"`` (also when the upstream said ``"stop"``, as OpenAI does for a
    forced ``tool_choice``), so a caller tests one value.
    """
    try:
        choice = body["choices"][0]
        message = choice["message"]
        text = message.get("content") or ""
        raw_calls = message.get("tool_calls")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise MalformedResponse(
            provider, f"answer has no choices[0].message: {json.dumps(body)[:200]}", status=200
        ) from None
    finish_reason = choice.get("finish_reason")
    calls: tuple[ToolCall, ...] = ()
    if raw_calls:
        calls = _tool_calls(provider, raw_calls)
        finish_reason = _calls_reason(finish_reason)
    return Chunk(
        text=text,
        finish_reason=finish_reason,
        usage=_usage(body.get("usage")),
        model=body.get("model"),
        tool_calls=calls,
    )


def parse_stream(
    provider: str, events: Iterable[SSEEvent], *, stats: StreamStats | None = None
) -> Iterator[Chunk]:
    """Turn a chat-completions event stream into chunks; stop at ``[DONE]``.

    Streamed tool calls (``delta.tool_calls``, pieces by index: id and name first, arguments
    cut anywhere) come out as ``Chunk.tool_call_deltas`` as they arrive; the chunk with the
    finish reason also carries the assembled ``tool_calls`` and says ``"tool_calls"``.

    An ``error`` object in the stream raises the matching transient error. An event whose data
    is not a JSON object is skipped and counted in ``stats`` (:func:`skip_malformed`), unless
    too many come in a row. A stream that ends with neither ``[DONE]`` nor a finish reason
    raises :class:`MalformedResponse` (truncated).
    """
    finished = False
    in_a_row = skipped = 0
    calls: ToolCallAssembler | None = None
    for event in events:
        data = event.data
        if data == DONE:
            return
        if calls is None:
            # Nearly every event is a plain text delta: decoded straight into its few fields.
            # Anything else (tool calls, usage, an error, an odd type) fails to decode as one
            # and takes the general path below.
            try:
                plain = _decode_text_event(data)
            except ValueError:
                pass
            else:
                in_a_row = 0
                if plain.choices:
                    first = plain.choices[0]
                    said = first.delta
                    text = (said.content if said is not None else None) or ""
                    finish_reason = first.finish_reason
                    if text or finish_reason:
                        finished = finished or finish_reason is not None
                        yield Chunk.trusted(text, finish_reason, None, plain.model)
                continue
        try:
            obj = loads(data)
        except ValueError:
            obj = None
        if not isinstance(obj, dict):
            skipped += 1
            in_a_row = skip_malformed(
                provider, stats, in_a_row, f"stream event is not a JSON object: {data[:200]!r}"
            )
            continue
        in_a_row = 0
        if "error" in obj:
            raise stream_error(provider, obj["error"])
        choices = obj.get("choices")
        text = ""
        finish_reason = None
        pieces = None
        if choices:
            choice = choices[0]
            delta = choice.get("delta") or {}
            text = delta.get("content") or ""
            finish_reason = choice.get("finish_reason")
            pieces = delta.get("tool_calls")
        usage = obj.get("usage")
        if pieces or (calls and finish_reason):
            # Tool calls are rare next to text: their work stays off the plain-text path.
            if calls is None:
                calls = ToolCallAssembler()
            deltas = _tool_call_deltas(provider, pieces) if pieces else ()
            for piece in deltas:
                calls.add(piece)
            assembled: tuple[ToolCall, ...] = ()
            if finish_reason and calls:
                assembled = calls.finish()
                finish_reason = _calls_reason(finish_reason)
            finished = finished or finish_reason is not None
            yield Chunk(
                text=text,
                finish_reason=finish_reason,
                usage=_usage(usage),
                model=obj.get("model"),
                tool_call_deltas=deltas,
                tool_calls=assembled,
            )
        elif text or finish_reason or usage:
            finished = finished or finish_reason is not None
            model = obj.get("model")
            if type(text) is str and _optional_str(finish_reason) and _optional_str(model):
                # The types the validated constructor would check: build it without checking.
                yield Chunk.trusted(text, finish_reason, _usage(usage), model)
            else:
                yield Chunk(
                    text=text, finish_reason=finish_reason, usage=_usage(usage), model=model
                )
    if not finished:
        raise truncated_stream(provider, "before [DONE]", skipped)


class _TextDelta(msgspec.Struct, gc=False):
    content: str | None = None
    tool_calls: None = None


class _TextChoice(msgspec.Struct, gc=False):
    delta: _TextDelta | None = None
    finish_reason: str | None = None


class _TextEvent(msgspec.Struct, gc=False):
    """A stream event that carries text or a finish reason and nothing else (no error key)."""

    choices: list[_TextChoice] = msgspec.field(default_factory=list)
    model: str | None = None
    usage: None = None
    error: msgspec.UnsetType = msgspec.UNSET


_decode_text_event = msgspec.json.Decoder(_TextEvent).decode


def stream_error(provider: str, error: Any) -> ProviderError:
    """The error an upstream reported inside a stream, as a transient ProviderError."""
    if isinstance(error, dict):
        message = str(error.get("message") or error)
        kind = f"{error.get('type') or ''} {error.get('code') or ''}"
    else:
        message, kind = str(error), ""
    if "overloaded" in kind:
        return Overloaded(provider, message)
    if "rate_limit" in kind:
        return RateLimited(provider, message)
    return ServerError(provider, f"error event mid-stream: {message}")


def _calls_reason(reason: Any) -> Any:
    # OpenAI says "stop" after a call it was forced to make (a named tool_choice); "length"
    # (arguments cut short) and "content_filter" stay, as the caller must know them.
    return "tool_calls" if reason in (None, "stop") else reason


def _tool_calls(provider: str, raw: Any) -> tuple[ToolCall, ...]:
    """``message.tool_calls`` of a whole answer, as :class:`ToolCall` objects."""
    try:
        return tuple(
            ToolCall(
                id=call.get("id") or f"call_{index}",
                name=call["function"]["name"],
                arguments=_arguments(call["function"].get("arguments")) or "{}",
            )
            for index, call in enumerate(raw)
        )
    except (KeyError, TypeError, AttributeError, ValueError):
        raise MalformedResponse(
            provider, f"answer has a malformed tool call: {json.dumps(raw)[:200]}", status=200
        ) from None


def _tool_call_deltas(provider: str, raw: Any) -> tuple[ToolCallDelta, ...]:
    """A stream event's ``delta.tool_calls`` pieces, as :class:`ToolCallDelta` objects."""
    try:
        deltas = []
        for position, piece in enumerate(raw):
            function = piece.get("function") or {}
            index = piece.get("index", position)
            deltas.append(
                ToolCallDelta(
                    index=index,
                    id=piece.get("id"),
                    name=function.get("name"),
                    arguments=_arguments(function.get("arguments")),
                )
            )
        return tuple(deltas)
    except (TypeError, AttributeError, ValueError):
        raise MalformedResponse(
            provider, f"stream has a malformed tool call piece: {json.dumps(raw)[:200]}"
        ) from None


def _arguments(raw: Any) -> str:
    # OpenAI sends a JSON string; a few compatible servers send the object itself.
    if raw is None:
        return ""
    if isinstance(raw, str):
        return raw
    return json.dumps(raw)


def _optional_str(value: Any) -> bool:
    return value is None or type(value) is str


def _usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    prompt = int(raw.get("prompt_tokens") or 0)
    completion = int(raw.get("completion_tokens") or 0)
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=int(raw.get("total_tokens") or prompt + completion),
    )
