"""Ollama's native chat wire format: request building and response parsing, with no I/O.

Requests (``POST /api/chat``): messages keep their role and text; ``developer`` becomes
``system``; multi-part content becomes its text parts joined by newlines plus ``images``, the
base64 data of its ``data:`` URLs. Ollama cannot fetch an image by URL, so an ``https:`` image
part is dropped. ``name`` and ``tool_call_id`` have no Ollama field and are dropped too. The
sampling options travel in Ollama's ``options`` object (``max_tokens`` as ``num_predict``,
``stop`` always as a list), with ``CompletionOptions.extra`` merged in last (``num_ctx``,
``top_k``, ``repeat_penalty``, ...). ``stream`` is always sent, since Ollama streams by default.

Responses: every NDJSON line carries a piece in ``message.content``; the ``done: true`` line
carries ``done_reason`` and the counters (``prompt_eval_count``, ``eval_count``). A line with
``error`` is a failure mid-stream.
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
    MalformedResponse,
    ServerError,
    StreamStats,
    Usage,
    truncated_stream,
)

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
    """The JSON body of ``POST /api/chat``; ``options`` is left out when nothing is set."""
    payload: dict[str, Any] = {
        "model": model,
        "messages": [to_ollama_message(message) for message in messages],
        "stream": stream,
    }
    mapped = to_ollama_options(options)
    if mapped:
        payload["options"] = mapped
    return payload


def to_ollama_message(message: dict[str, Any]) -> dict[str, Any]:
    """One validated chat message in Ollama's shape: ``role``, ``content`` and maybe ``images``."""
    role = ROLES.get(message["role"], message["role"])
    content = message["content"]
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


def parse_line(provider: str, line: Any) -> Chunk | None:
    """One NDJSON line as a chunk: a piece of text, or the final one with reason and usage.

    Returns ``None`` for a line that carries nothing (an empty piece). Raises
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
    if line.get("done") is True:
        return Chunk(
            text=text,
            finish_reason=finish_reason(line.get("done_reason")),
            usage=usage(line),
            model=line.get("model"),
        )
    if "done" not in line and message is None:
        raise MalformedResponse(provider, f"line is not an Ollama chat object: {_preview(line)}")
    return Chunk(text=text) if text else None


def parse_stream(
    provider: str, lines: Iterable[Any], *, stats: StreamStats | None = None
) -> Iterator[Chunk]:
    """The chunks of a streamed answer, up to and including its ``done`` line.

    A stream that ends without a ``done: true`` line raises :class:`MalformedResponse`. Lines
    that are not JSON are skipped before they get here (``HttpTransport.post_ndjson``); pass
    the ``stats`` given to it too, and that error says how many this stream skipped.
    """
    skipped_before = stats.malformed_events if stats is not None else 0
    for line in lines:
        chunk = parse_line(provider, line)
        if chunk is not None:
            yield chunk
        if isinstance(line, dict) and line.get("done") is True:
            return
    skipped = stats.malformed_events - skipped_before if stats is not None else 0
    raise truncated_stream(provider, "without its done line", skipped)


def parse_response(provider: str, body: Any) -> Chunk:
    """The one chunk of a whole (``"stream": false``) answer.

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
    return chunk


def error_message(error: Any) -> str:
    """The text of Ollama's ``error`` field (a string; a ``{"message": ...}`` object tolerated)."""
    if isinstance(error, dict):
        return str(error.get("message") or json.dumps(error)[:200])
    return str(error)


def _preview(value: Any) -> str:
    return json.dumps(value)[:200]
