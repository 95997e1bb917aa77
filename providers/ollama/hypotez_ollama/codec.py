"""Ollama's native chat wire format: request building and response parsing, with no I/O.

Requests (``POST /api/chat``): messages keep their role and text; ``developer`` becomes
``system``; multi-part content becomes its text parts joined by newlines plus ``images``, the
base64 data of its ``data:`` URLs. Ollama cannot fetch an image by URL, so an ``https:`` image
part is dropped; ``name`` has no Ollama field and is dropped too. Tools (``tools`` in OpenAI's
function shape, ``strict`` left out), an assistant's ``tool_calls`` (arguments as a JSON object)
and ``tool`` results (``tool_name`` and ``tool_call_id``) are mapped as :mod:`hypotez_ollama`'s
docstring tells, and ``response_format`` becomes ``format``. The
sampling options travel in Ollama's ``options`` object (``max_tokens`` as ``num_predict``,
``stop`` always as a list), with ``CompletionOptions.extra`` merged in last (``num_ctx``,
``top_k``, ``repeat_penalty``, ...). ``stream`` is always sent, since Ollama streams by default.

Responses: every NDJSON line carries a piece in ``message.content``; the ``done: true`` line
carries ``done_reason`` and the counters (``prompt_eval_count``, ``eval_count``). A line with
``error`` is a failure mid-stream. Tool calls come whole in ``message.tool_calls`` (arguments
as an object), one line in a stream, before the ``done`` line.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import unquote_to_bytes

from hypotez_providers import (
    Chunk,
    CompletionOptions,
    InvalidInput,
    MalformedResponse,
    ServerError,
    StreamStats,
    Usage,
    truncated_stream,
)

# Not exported from the package root yet; ``tools`` is a public module of the core.
from hypotez_providers.tools import ToolCallAssembler, ToolCallDelta

#: Our role names that Ollama spells differently.
ROLES = {"developer": "system"}
#: ``CompletionOptions`` fields and their names in Ollama's ``options`` object.
OPTION_NAMES = {
    "temperature": "temperature",
    "top_p": "top_p",
    "seed": "seed",
    "stop": "stop",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
    "max_tokens": "num_predict",
}
#: Ollama's ``done_reason`` values and the finish reasons they mean; others pass unchanged.
FINISH_REASONS = {"stop": "stop", "length": "length"}


def build_payload(
    model: str, messages: list[dict[str, Any]], stream: bool, options: CompletionOptions
) -> dict[str, Any]:
    """The JSON body of ``POST /api/chat``; ``options`` is left out when nothing is set.

    ``tools`` and ``format`` are sent only when the options ask for them (:func:`to_ollama_tools`,
    :func:`to_ollama_format`).
    """
    names: dict[str, str] = {}
    converted = []
    for message in messages:
        for call in message.get("tool_calls") or ():
            names[call["id"]] = call["function"]["name"]
        converted.append(to_ollama_message(message, names))
    payload: dict[str, Any] = {"model": model, "messages": converted, "stream": stream}
    tools = to_ollama_tools(options)
    if tools:
        payload["tools"] = tools
    fmt = to_ollama_format(options)
    if fmt is not None:
        payload["format"] = fmt
    mapped = to_ollama_options(options)
    if mapped:
        payload["options"] = mapped
    return payload


def to_ollama_tools(options: CompletionOptions) -> list[dict[str, Any]]:
    """The ``tools`` to send: OpenAI's function shape, which Ollama takes, less ``strict``.

    Ollama has no ``tool_choice``: ``"none"`` sends no tools; a named function sends only that
    one (the model can call nothing else, though it may still answer in text); ``"required"``
    sends them all, as ``"auto"`` does. ``parallel_tool_calls`` has no Ollama field either.
    """
    if not options.tools or options.tool_choice == "none":
        return []
    tools = list(options.tools)
    choice = options.tool_choice
    if choice is not None and not isinstance(choice, str):
        tools = [tool for tool in tools if tool.function.name == choice.function.name]
    return [tool.model_dump(exclude_none=True, exclude={"function": {"strict"}}) for tool in tools]


def to_ollama_format(options: CompletionOptions) -> str | dict[str, Any] | None:
    """``format``: ``"json"`` for a JSON object, the schema itself for a JSON schema, else None."""
    wanted = options.response_format
    if wanted is None or not wanted.structured:
        return None
    if wanted.json_schema is not None:
        return dict(wanted.json_schema.json_schema)
    return "json"


def to_ollama_message(
    message: dict[str, Any], tool_names: dict[str, str] | None = None
) -> dict[str, Any]:
    """One validated chat message in Ollama's shape: ``role``, ``content`` and maybe ``images``.

    An assistant's ``tool_calls`` keep their ids and carry their arguments as a JSON object; a
    ``tool`` result keeps its ``tool_call_id`` and names its function in ``tool_name``, looked
    up in ``tool_names`` (call id to function name, from the assistant messages before it).
    Raises :class:`InvalidInput` for tool-call arguments that are not a JSON object, which
    Ollama cannot take.
    """
    role = ROLES.get(message["role"], message["role"])
    converted = _content(role, message.get("content"))
    calls = message.get("tool_calls")
    if calls:
        converted["tool_calls"] = [
            {
                "id": call["id"],
                "function": {
                    "index": index,
                    "name": call["function"]["name"],
                    "arguments": _argument_object(call["function"].get("arguments")),
                },
            }
            for index, call in enumerate(calls)
        ]
    call_id = message.get("tool_call_id")
    if role == "tool" and call_id:
        name = (tool_names or {}).get(call_id)
        if name:
            converted["tool_name"] = name
        converted["tool_call_id"] = call_id
    return converted


def _argument_object(arguments: Any) -> dict[str, Any]:
    try:
        parsed = json.loads(arguments or "{}")
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise InvalidInput(
            f"Ollama takes a tool call's arguments as a JSON object, got {str(arguments)[:100]!r}; "
            'send the call with arguments like \'{"city": "Paris"}\'',
            field="messages",
        )
    return parsed


def _content(role: str, content: Any) -> dict[str, Any]:
    if content is None:
        return {"role": role, "content": ""}
    if isinstance(content, str):
        return {"role": role, "content": content}
    texts: list[str] = []
    images: list[str] = []
    for part in content:
        if part.get("type") == "text":
            texts.append(part["text"])
        elif part.get("type") == "image_url":
            data = image_data(part["image_url"]["url"])
            if data is not None:
                images.append(data)
    converted: dict[str, Any] = {"role": role, "content": "\n".join(texts)}
    if images:
        converted["images"] = images
    return converted


def image_data(url: str) -> str | None:
    """The base64 data of a ``data:`` URL, or ``None`` for any other URL (Ollama cannot fetch).

    A ``;base64`` URL's data passes as it is (Ollama rejects bad base64 with a 400); a ``data:``
    URL of percent-encoded bytes is encoded here.
    """
    if not url.startswith("data:") or "," not in url:
        return None
    header, data = url[len("data:") :].split(",", 1)
    if header.endswith(";base64"):
        return data
    return base64.b64encode(unquote_to_bytes(data)).decode("ascii")


def to_ollama_options(options: CompletionOptions) -> dict[str, Any]:
    """The caller's options as Ollama's ``options`` object; ``extra`` is merged in last."""
    mapped: dict[str, Any] = {}
    for field, name in OPTION_NAMES.items():
        value = getattr(options, field)
        if value is None:
            continue
        mapped[name] = [value] if field == "stop" and isinstance(value, str) else value
    mapped.update(options.extra)
    return mapped


def finish_reason(done_reason: Any) -> str | None:
    """Ollama's ``done_reason`` as a finish reason (``stop``, ``length``; others unchanged)."""
    if not isinstance(done_reason, str) or not done_reason:
        return None
    return FINISH_REASONS.get(done_reason, done_reason)


def usage(line: dict[str, Any]) -> Usage | None:
    """The token counts of a ``done`` line, or ``None`` when it has no counters."""
    if "prompt_eval_count" not in line and "eval_count" not in line:
        return None
    prompt = int(line.get("prompt_eval_count") or 0)
    completion = int(line.get("eval_count") or 0)
    return Usage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


def parse_line(provider: str, line: Any, *, first_call: int = 0) -> Chunk | None:
    """One NDJSON line as a chunk: a piece of text, or the final one with reason and usage.

    Tool calls in the line's ``message.tool_calls`` come out as whole
    :class:`ToolCallDelta` pieces, numbered from ``first_call`` (the calls earlier lines of the
    answer carried). Returns ``None`` for a line that carries nothing (an empty piece). Raises
    :class:`ServerError` for an ``error`` line and :class:`MalformedResponse` for a line that is
    not an Ollama chat object.
    """
    if not isinstance(line, dict):
        raise MalformedResponse(provider, f"stream line is not an object: {_preview(line)}")
    if "error" in line:
        raise ServerError(provider, f"error line mid-stream: {error_message(line['error'])}")
    message = line.get("message")
    if message is not None and not isinstance(message, dict):
        raise MalformedResponse(provider, f"line has a malformed message: {_preview(line)}")
    text = str((message or {}).get("content") or "")
    raw_calls = (message or {}).get("tool_calls")
    deltas = tool_call_deltas(provider, raw_calls, first_call) if raw_calls else ()
    if line.get("done") is True:
        return Chunk(
            text=text,
            finish_reason=finish_reason(line.get("done_reason")),
            usage=usage(line),
            model=line.get("model"),
            tool_call_deltas=deltas,
        )
    if "done" not in line and message is None:
        raise MalformedResponse(provider, f"line is not an Ollama chat object: {_preview(line)}")
    if deltas:
        return Chunk(text=text, tool_call_deltas=deltas)
    # The hot path of a streamed answer: text is a str already, nothing left to validate.
    return Chunk.trusted(text) if text else None


def tool_call_deltas(provider: str, raw: Any, first_call: int = 0) -> tuple[ToolCallDelta, ...]:
    """Ollama's ``message.tool_calls``, each a whole call, as :class:`ToolCallDelta` pieces.

    Ollama sends a call's ``arguments`` as a JSON object; they become its JSON text. Its ``id``
    (current Ollama sends one) is kept; an older server's call has none, and the assembled
    call gets ``call_<index>``. Raises :class:`MalformedResponse` for a call without a name.
    """
    try:
        return tuple(
            ToolCallDelta(
                index=first_call + position,
                id=call.get("id") or None,
                name=call["function"]["name"],
                arguments=_arguments_text(call["function"].get("arguments")),
            )
            for position, call in enumerate(raw)
        )
    except (KeyError, TypeError, AttributeError, ValueError):
        raise MalformedResponse(
            provider, f"answer has a malformed tool call: {_preview(raw)}"
        ) from None


def _arguments_text(arguments: Any) -> str:
    if arguments is None:
        return "{}"
    if isinstance(arguments, str):
        return arguments or "{}"  # an OpenAI-minded proxy may send the JSON text
    return json.dumps(arguments)


def _with_calls(chunk: Chunk, calls: ToolCallAssembler) -> Chunk:
    # The finishing chunk carries the whole calls; Ollama says "stop" after calling tools.
    reason = chunk.finish_reason
    return chunk.model_copy(
        update={
            "tool_calls": calls.finish(),
            "finish_reason": "tool_calls" if reason in (None, "stop") else reason,
        }
    )


def parse_stream(
    provider: str, lines: Iterable[Any], *, stats: StreamStats | None = None
) -> Iterator[Chunk]:
    """The chunks of a streamed answer, up to and including its ``done`` line.

    Ollama sends each tool call whole, in a line before the ``done`` one: it comes out as
    ``tool_call_deltas`` at once, and the ``done`` chunk carries the assembled ``tool_calls``
    with finish reason ``"tool_calls"``.

    A stream that ends without a ``done: true`` line raises :class:`MalformedResponse`. Lines
    that are not JSON are skipped before they get here (``HttpTransport.post_ndjson``); pass
    the ``stats`` given to it too, and that error says how many this stream skipped.
    """
    skipped_before = stats.malformed_events if stats is not None else 0
    calls: ToolCallAssembler | None = None
    count = 0
    for line in lines:
        chunk = parse_line(provider, line, first_call=count)
        done = isinstance(line, dict) and line.get("done") is True
        if chunk is not None:
            if chunk.tool_call_deltas:
                calls = calls or ToolCallAssembler()
                for delta in chunk.tool_call_deltas:
                    calls.add(delta)
                count += len(chunk.tool_call_deltas)
            if done and calls:
                chunk = _with_calls(chunk, calls)
            yield chunk
        if done:
            return
    skipped = stats.malformed_events - skipped_before if stats is not None else 0
    raise truncated_stream(provider, "without its done line", skipped)


def parse_response(provider: str, body: Any) -> Chunk:
    """The one chunk of a whole (``"stream": false``) answer, its tool calls whole.

    An ``error`` in a 200 answer raises :class:`ServerError`; an object that is not a finished
    chat answer raises :class:`MalformedResponse`.
    """
    if isinstance(body, dict) and "error" in body:
        message = error_message(body["error"])
        raise ServerError(provider, f"the answer reports an error: {message}", status=200)
    chunk = parse_line(provider, body) if isinstance(body, dict) else None
    if chunk is None or body.get("done") is not True:
        raise MalformedResponse(
            provider, f"answer is not a finished Ollama chat object: {_preview(body)}", status=200
        )
    if not chunk.tool_call_deltas:
        return chunk
    calls = ToolCallAssembler()
    for delta in chunk.tool_call_deltas:
        calls.add(delta)
    return _with_calls(chunk, calls).model_copy(update={"tool_call_deltas": ()})


def error_message(error: Any) -> str:
    """The text of Ollama's ``error`` field (a string; a ``{"message": ...}`` object tolerated)."""
    if isinstance(error, dict):
        return str(error.get("message") or json.dumps(error)[:200])
    return str(error)


def _preview(value: Any) -> str:
    return json.dumps(value)[:200]
