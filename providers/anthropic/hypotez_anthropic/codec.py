"""The Anthropic Messages API wire format: requests built, answers and events read. No I/O."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import unquote_to_bytes

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
    ToolCall,
    ToolCallAssembler,
    ToolCallDelta,
    Usage,
    skip_malformed,
    truncated_stream,
)

from . import tools

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
    consecutive messages of one role are merged; an assistant message's ``tool_calls`` become
    ``tool_use`` blocks after its text; ``tool`` messages become ``tool_result`` blocks of the
    user's turn, first in it (consecutive ones merge into one user message); ``max_tokens``
    defaults to :data:`DEFAULT_MAX_TOKENS`; ``stop`` is sent as the list ``stop_sequences``;
    ``temperature`` and ``top_p`` pass through; tools, tool choice and response format are
    mapped by :func:`hypotez_anthropic.tools.tool_fields`; :data:`DROPPED_OPTIONS` have no
    Messages API field and are not sent; ``options.extra`` is merged last, so it may override
    any field.
    """
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        role = message["role"]
        if role in ("system", "developer"):
            system.append(_text_of(message["content"]))
            continue
        content: str | list[dict[str, Any]]
        if role == "tool":
            role = "user"  # a tool result is the user's turn
            result = message.get("content")
            content = [tools.tool_result_block(message, to_blocks(result) if result else None)]
        elif role == "assistant" and message.get("tool_calls"):
            content = tools.assistant_blocks(index, message.get("content"), message["tool_calls"])
        else:
            role = "assistant" if role == "assistant" else "user"
            content = to_blocks(message.get("content") or "")
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] = _join(turns[-1]["content"], content)
        else:
            turns.append({"role": role, "content": content})
    for turn in turns:
        if turn["role"] == "user":
            turn["content"] = tools.results_first(turn["content"])
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
    body.update(tools.tool_fields(options))
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
    """An image block: base64 for a ``data:`` URL, a URL source otherwise.

    A ``data:`` URL that is not base64 (percent-encoded, as an SVG often is) is encoded,
    as the base64 source takes nothing else.
    """
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        params = header[5:].split(";")
        media_type = params[0] or "image/png"
        if "base64" not in params[1:]:
            data = base64.b64encode(unquote_to_bytes(data)).decode("ascii")
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


def parse_response(provider: str, body: Any, *, answer_tool: str | None = None) -> Chunk:
    """The one chunk of a whole answer: its text blocks joined, tool calls, stop reason, usage.

    Each ``tool_use`` block is a :class:`ToolCall` (its ``input`` as JSON text) and
    ``stop_reason: tool_use`` is ``"tool_calls"``. The call of ``answer_tool`` (see
    :func:`hypotez_anthropic.tools.answer_tool`) is the answer itself: its input is the text,
    and the finish reason is ``"stop"``. Other blocks (``thinking``) are skipped. An answer
    without a ``content`` list, or with a malformed ``tool_use`` block, raises
    :class:`MalformedResponse`.
    """
    content = body.get("content") if isinstance(body, dict) else None
    if not isinstance(content, list):
        raise MalformedResponse(
            provider, f"answer has no content blocks: {json.dumps(body)[:200]}", status=200
        )
    texts: list[str] = []
    calls: list[ToolCall] = []
    answered = False
    for block in content:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            call = _tool_call(provider, block)
            if answer_tool is not None and call.name == answer_tool:
                texts.append(call.arguments)
                answered = True
            else:
                calls.append(call)
    usage = body.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    reason = finish_reason(body.get("stop_reason"))
    if answered and not calls and reason == "tool_calls":
        reason = "stop"
    return Chunk(
        text="".join(texts),
        finish_reason=reason,
        usage=_usage(usage.get("input_tokens"), usage.get("output_tokens")),
        model=body.get("model"),
        tool_calls=tuple(calls),
    )


def parse_stream(
    provider: str,
    events: Iterable[SSEEvent],
    *,
    stats: StreamStats | None = None,
    answer_tool: str | None = None,
) -> Iterator[Chunk]:
    """Turn the Messages event stream into chunks; the last carries stop reason and usage.

    ``message_start`` gives the model and input tokens, each ``text_delta`` is a chunk,
    ``message_delta`` gives the stop reason and output tokens, ``message_stop`` ends the answer
    with a text-less chunk holding them. A ``content_block_start`` of a ``tool_use`` block is a
    :class:`ToolCallDelta` with its id and name (``index``: the block's position among the
    answer's tool calls), each ``input_json_delta`` one with the next ``partial_json`` piece;
    the ``message_stop`` chunk carries the assembled calls and says ``"tool_calls"``. The
    pieces of ``answer_tool``'s input are text chunks instead (see :func:`parse_response`).
    ``ping`` and unknown events are skipped. An ``error`` event raises :func:`stream_error`'s
    error, even when its data is not JSON. Other data that is not JSON is skipped and counted
    in ``stats`` (:func:`skip_malformed`), unless too many come in a row; a stream that ends
    before ``message_stop`` raises :class:`MalformedResponse`.
    """
    model: str | None = None
    input_tokens = output_tokens = None
    stop_reason: str | None = None
    in_a_row = skipped = 0
    calls: ToolCallAssembler | None = None
    positions: dict[Any, int] = {}  # a tool_use block's index → its position among the calls
    answer_block: Any = None
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
            delta_kind = delta.get("type")
            if delta_kind == "text_delta" and delta.get("text"):
                text = str(delta["text"])
                if model is None or type(model) is str:
                    yield Chunk.trusted(text, None, None, model)  # the hot path: nothing to check
                else:
                    yield Chunk(text=text, model=model)
            elif delta_kind == "input_json_delta" and delta.get("partial_json"):
                piece = str(delta["partial_json"])
                block = data.get("index")
                if answer_block is not None and block == answer_block:
                    yield Chunk(text=piece, model=model)
                elif block in positions and calls is not None:
                    call = ToolCallDelta(index=positions[block], arguments=piece)
                    calls.add(call)
                    yield Chunk(model=model, tool_call_deltas=(call,))
        elif kind == "content_block_start":
            block = _mapping(data.get("content_block"))
            if block.get("type") != "tool_use":
                continue
            header = _tool_call(provider, {**block, "input": block.get("input") or {}})
            if answer_tool is not None and header.name == answer_tool:
                answer_block = data.get("index")
                if header.arguments != "{}":
                    yield Chunk(text=header.arguments, model=model)
                continue
            if calls is None:
                calls = ToolCallAssembler()
            positions[data.get("index")] = len(positions)
            # The real API starts a call with an empty input and streams it; a whole input
            # given at the start (a proxy's habit) is its arguments.
            arguments = header.arguments if block.get("input") else ""
            call = ToolCallDelta(
                index=positions[data.get("index")],
                id=header.id,
                name=header.name,
                arguments=arguments,
            )
            calls.add(call)
            yield Chunk(model=model, tool_call_deltas=(call,))
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
            assembled = calls.finish() if calls else ()
            reason = finish_reason(stop_reason)
            if answer_block is not None and not assembled and reason == "tool_calls":
                reason = "stop"
            yield Chunk(
                finish_reason=reason,
                usage=_usage(input_tokens, output_tokens),
                model=model,
                tool_calls=assembled,
            )
            return
        elif kind == "error" or event.event == "error":
            raise stream_error(provider, data.get("error"))
    raise truncated_stream(provider, "before message_stop", skipped)


def _tool_call(provider: str, block: dict[str, Any]) -> ToolCall:
    """A ``tool_use`` block as a :class:`ToolCall`, its ``input`` object as JSON text."""
    ident, name, arguments = block.get("id"), block.get("name"), block.get("input", {})
    if not isinstance(ident, str) or not isinstance(name, str) or not isinstance(arguments, dict):
        raise MalformedResponse(
            provider, f"answer has a malformed tool_use block: {json.dumps(block)[:200]}"
        )
    return ToolCall(id=ident, name=name, arguments=json.dumps(arguments))


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
