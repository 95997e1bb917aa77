"""The Anthropic Messages API wire format: requests built, answers and events read. No I/O."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from hypotez_providers import (
    Chunk,
    CompletionOptions,
    MalformedResponse,
    Overloaded,
    ProviderError,
    RateLimited,
    ServerError,
    SSEEvent,
    StreamStats,
    Usage,
    skip_malformed,
    truncated_stream,
)

#: Sent when the caller sets no max_tokens: the Messages API requires the field.
DEFAULT_MAX_TOKENS = 4096
#: Anthropic's stop reasons in the common vocabulary.
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
}
#: Options with no Messages API field; they are not sent.
DROPPED_OPTIONS = ("seed", "presence_penalty", "frequency_penalty")


def build_request(
    model: str, messages: list[dict[str, Any]], stream: bool, options: CompletionOptions
) -> dict[str, Any]:
    """The ``/v1/messages`` request body for validated OpenAI-shape ``messages`` and options.

    System and developer messages become the top-level ``system`` (joined by blank lines);
    consecutive messages of one role are merged; a ``tool`` message is the user's turn (its
    text); ``max_tokens`` defaults to :data:`DEFAULT_MAX_TOKENS`; ``stop`` is sent as the list
    ``stop_sequences``; ``temperature`` and ``top_p`` pass through; :data:`DROPPED_OPTIONS`
    have no Messages API field and are not sent; ``options.extra`` is merged last, so it may
    override any field.
    """
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = message["role"]
        if role in ("system", "developer"):
            system.append(_text_of(message["content"]))
            continue
        role = "assistant" if role == "assistant" else "user"  # a tool result is the user's turn
        content = to_blocks(message["content"])
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] = _join(turns[-1]["content"], content)
        else:
            turns.append({"role": role, "content": content})
    body: dict[str, Any] = {
        "model": model,
        "messages": turns,
        "max_tokens": options.max_tokens or DEFAULT_MAX_TOKENS,
    }
    if system:
        body["system"] = "\n\n".join(system)
    if options.temperature is not None:
        body["temperature"] = options.temperature
    if options.top_p is not None:
        body["top_p"] = options.top_p
    if options.stop is not None:
        stop = options.stop
        body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if stream:
        body["stream"] = True
    body.update(options.extra)
    return body


def to_blocks(content: str | list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """OpenAI-style content as Anthropic content: text stays text, parts become blocks."""
    if isinstance(content, str):
        return content
    blocks: list[dict[str, Any]] = []
    for part in content:
        if part["type"] == "text":
            blocks.append({"type": "text", "text": part["text"]})
        else:
            blocks.append(image_block(part["image_url"]["url"]))
    return blocks


def image_block(url: str) -> dict[str, Any]:
    """An image block: base64 for a ``data:`` URL, a URL source otherwise."""
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header[5:].split(";")[0] or "image/png"
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    return {"type": "image", "source": {"type": "url", "url": url}}


def finish_reason(stop_reason: str | None) -> str | None:
    """Anthropic's stop reason in the common vocabulary (unknown ones pass through)."""
    if stop_reason is None:
        return None
    return FINISH_REASONS.get(stop_reason, stop_reason)


def parse_response(provider: str, body: Any) -> Chunk:
    """The one chunk of a whole answer: its text blocks joined, stop reason and usage.

    Blocks other than text (``tool_use``, ``thinking``) are not part of the text. An answer
    without a ``content`` list raises :class:`MalformedResponse`.
    """
    content = body.get("content") if isinstance(body, dict) else None
    if not isinstance(content, list):
        raise MalformedResponse(
            provider, f"answer has no content blocks: {json.dumps(body)[:200]}", status=200
        )
    text = "".join(
        str(block.get("text", ""))
        for block in content
        if isinstance(block, dict) and block.get("type") == "text"
    )
    usage = body.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    return Chunk(
        text=text,
        finish_reason=finish_reason(body.get("stop_reason")),
        usage=_usage(usage.get("input_tokens"), usage.get("output_tokens")),
        model=body.get("model"),
    )


def parse_stream(
    provider: str, events: Iterable[SSEEvent], *, stats: StreamStats | None = None
) -> Iterator[Chunk]:
    """Turn the Messages event stream into chunks; the last carries stop reason and usage.

    ``message_start`` gives the model and input tokens, each ``text_delta`` is a chunk,
    ``message_delta`` gives the stop reason and output tokens, ``message_stop`` ends the answer
    with a text-less chunk holding them. ``ping`` and unknown events are skipped. An ``error``
    event raises :func:`stream_error`'s error, even when its data is not JSON. Other data that
    is not JSON is skipped and counted in ``stats`` (:func:`skip_malformed`), unless too many
    come in a row; a stream that ends before ``message_stop`` raises
    :class:`MalformedResponse`.
    """
    model: str | None = None
    input_tokens = output_tokens = None
    stop_reason: str | None = None
    in_a_row = skipped = 0
    for event in events:
        try:
            data = json.loads(event.data)
        except ValueError:
            if event.event == "error":
                raise stream_error(provider, event.data) from None
            skipped += 1
            in_a_row = skip_malformed(
                provider, stats, in_a_row, f"stream event is not JSON: {event.data[:200]!r}"
            )
            continue
        in_a_row = 0
        if not isinstance(data, dict):
            data = {"type": event.event, "error": data}
        kind = data.get("type")
        if kind == "content_block_delta":
            delta = _mapping(data.get("delta"))
            if delta.get("type") == "text_delta" and delta.get("text"):
                yield Chunk(text=str(delta["text"]), model=model)
        elif kind == "message_start":
            message = _mapping(data.get("message"))
            model = message.get("model") or model
            input_tokens = _mapping(message.get("usage")).get("input_tokens")
        elif kind == "message_delta":
            stop_reason = _mapping(data.get("delta")).get("stop_reason") or stop_reason
            usage = _mapping(data.get("usage"))
            # Newer API versions repeat the (cumulative) input count here too.
            input_tokens = usage.get("input_tokens", input_tokens)
            output_tokens = usage.get("output_tokens", output_tokens)
        elif kind == "message_stop":
            yield Chunk(
                finish_reason=finish_reason(stop_reason),
                usage=_usage(input_tokens, output_tokens),
                model=model,
            )
            return
        elif kind == "error" or event.event == "error":
            raise stream_error(provider, data.get("error"))
    raise truncated_stream(provider, "before message_stop", skipped)


def stream_error(provider: str, error: Any) -> ProviderError:
    """An ``error`` event's error object as the matching typed error, with its message.

    ``overloaded_error`` is :class:`Overloaded`, ``rate_limit_error`` :class:`RateLimited`,
    anything else (``api_error`` included) :class:`ServerError`; all are retryable.
    """
    error = error if isinstance(error, dict) else {"message": error}
    kind = str(error.get("type") or "")
    message = str(error.get("message") or kind or "error event without a message")
    if kind == "overloaded_error":
        return Overloaded(provider, message)
    if kind == "rate_limit_error":
        return RateLimited(provider, message)
    return ServerError(provider, message)


def _usage(input_tokens: Any, output_tokens: Any) -> Usage | None:
    if input_tokens is None and output_tokens is None:
        return None
    prompt, completion = int(input_tokens or 0), int(output_tokens or 0)
    return Usage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text_of(content: str | list[dict[str, Any]]) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(part["text"] for part in content if part.get("type") == "text")


def _join(
    earlier: str | list[dict[str, Any]], later: str | list[dict[str, Any]]
) -> str | list[dict[str, Any]]:
    """Two consecutive same-role contents as one (the API wants roles to alternate)."""
    if isinstance(earlier, str) and isinstance(later, str):
        return f"{earlier}\n\n{later}"
    as_blocks = [
        [{"type": "text", "text": content}] if isinstance(content, str) else content
        for content in (earlier, later)
    ]
    return as_blocks[0] + as_blocks[1]
