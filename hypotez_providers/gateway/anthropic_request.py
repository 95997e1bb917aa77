"""Anthropic's ``POST /v1/messages`` request body, checked and translated into a GatewayCall.

Pure: no I/O. Every mistake is an :class:`~hypotez_providers.errors.InvalidInput` whose
``field`` is the dotted path Anthropic itself reports (``messages.0.content.1.source``), raised
before anything is sent. Fields that change nothing for the answer (``metadata``,
``service_tier``, ``cache_control``, ...) are accepted and dropped; fields this gateway cannot
honour (extended ``thinking``, server tools, documents, ...) are refused, never ignored.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import InvalidInput
from ._anthropic_shapes import list_at, object_at, only_known, shown, tool_name
from .anthropic_options import request_options
from .call import GatewayCall

#: Top-level fields that do not change the answer: accepted and dropped.
IGNORED_FIELDS = frozenset(
    {"metadata", "service_tier", "cache_control", "inference_geo", "speed", "diagnostics"}
)
#: Top-level fields this gateway translates.
HANDLED_FIELDS = frozenset(
    {
        "model",
        "max_tokens",
        "messages",
        "system",
        "stop_sequences",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "stream",
        "thinking",
        "output_config",
    }
)
#: The image media types Anthropic accepts in a base64 source.
IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")

_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_CACHE = ("cache_control",)


def parse_request(body: object) -> GatewayCall:
    """The call an Anthropic Messages request asks for, or :class:`InvalidInput` naming the field.

    ``body`` is the decoded JSON body. Messages come out in OpenAI's chat shape (``system``
    first, ``tool_result`` blocks as ``tool`` messages in their place, ``tool_use`` blocks as
    the assistant's ``tool_calls``); ``top_k`` goes to ``extra``. A streamed call asks for
    usage, which Anthropic's ``message_delta`` event reports.
    """
    request = object_at(body, "", "the request body")
    for name in request:
        if name not in HANDLED_FIELDS and name not in IGNORED_FIELDS:
            raise InvalidInput(
                f"{name}: this gateway does not support the field {shown(name)}; remove it",
                field=name,
            )
    model = request.get("model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidInput(
            "model: required, the name of a model (a non-empty string)", field="model"
        )
    stream = request.get("stream", False)
    if not isinstance(stream, bool):
        raise InvalidInput("stream: must be true or false", field="stream")
    messages = _system(request.get("system"))
    messages.extend(_messages(request.get("messages")))
    return GatewayCall(
        model=model,
        messages=messages,
        stream=stream,
        options=request_options(request),
        include_usage=stream,
    )


# -- messages ---------------------------------------------------------------------------------


def _system(value: object) -> list[dict[str, Any]]:
    if value is None:
        return []
    text = _text_content(value, "system")
    return [{"role": "system", "content": text}] if text else []


def _messages(value: object) -> list[dict[str, Any]]:
    if value is None:
        raise InvalidInput(
            "messages: required, a list like [{'role': 'user', 'content': 'Hello'}]",
            field="messages",
        )
    items = list_at(value, "messages")
    if not items:
        raise InvalidInput("messages: empty; send at least one user message", field="messages")
    translated: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        field = f"messages.{index}"
        message = object_at(item, field, "a message")
        only_known(message, field, ("role", "content"), "a message has role and content")
        role = message.get("role")
        if "content" not in message:
            raise InvalidInput(
                f"{field}.content: required (text or a list of blocks)", field=f"{field}.content"
            )
        content = message["content"]
        if role == "user":
            translated.extend(_user_turn(content, f"{field}.content"))
        elif role == "assistant":
            translated.append(_assistant_turn(content, f"{field}.content"))
        elif role == "system":
            translated.append(
                {"role": "system", "content": _text_content(content, f"{field}.content")}
            )
        else:
            raise InvalidInput(
                f"{field}.role: must be 'user', 'assistant' or 'system', got {shown(role)}",
                field=f"{field}.role",
            )
    return translated


def _user_turn(content: object, field: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    blocks = _blocks(content, field)
    turn: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for index, (block, kind) in enumerate(blocks):
        where = f"{field}.{index}"
        if kind == "text":
            parts.append(_text_part(block, where))
        elif kind == "image":
            parts.append(_image_part(block, where))
        elif kind == "tool_result":
            if parts:
                turn.append({"role": "user", "content": _collapsed(parts)})
                parts = []
            turn.append(_tool_message(block, where))
        else:
            raise _unsupported_block(kind, where, "text, image and tool_result")
    if parts:
        turn.append({"role": "user", "content": _collapsed(parts)})
    return turn


def _assistant_turn(content: object, field: str) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for index, (block, kind) in enumerate(_blocks(content, field)):
        where = f"{field}.{index}"
        if kind == "text":
            texts.append(_text_part(block, where)["text"])
        elif kind == "tool_use":
            calls.append(_tool_call(block, where))
        elif kind in ("thinking", "redacted_thinking"):
            continue  # earlier turns' thinking is context Anthropic itself drops; none is made here
        else:
            raise _unsupported_block(kind, where, "text and tool_use")
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts)}
    if calls:
        message["tool_calls"] = calls
        if not texts:
            message["content"] = None
    return message


def _blocks(content: object, field: str) -> list[tuple[dict[str, Any], object]]:
    items = list_at(content, field, "text or a list of content blocks")
    if not items:
        raise InvalidInput(f"{field}: empty; give text or at least one content block", field=field)
    blocks = []
    for index, item in enumerate(items):
        block = object_at(item, f"{field}.{index}", "a content block")
        blocks.append((block, block.get("type")))
    return blocks


def _unsupported_block(kind: object, field: str, supported: str) -> InvalidInput:
    return InvalidInput(
        f"{field}.type: a block of type {shown(kind)} is not supported here; this gateway takes "
        f"{supported} blocks in this message",
        field=f"{field}.type",
    )


def _text_part(block: dict[str, Any], field: str) -> dict[str, Any]:
    only_known(block, field, ("type", "text", "cache_control", "citations"), "a text block")
    text = block.get("text")
    if not isinstance(text, str):
        raise InvalidInput(f"{field}.text: required, a string", field=f"{field}.text")
    return {"type": "text", "text": text}


def _text_content(value: object, field: str) -> str:
    """Text given as a string or a list of text blocks, joined by blank lines."""
    if isinstance(value, str):
        return value
    items = list_at(value, field, "text or a list of text blocks")
    texts = []
    for index, item in enumerate(items):
        where = f"{field}.{index}"
        block = object_at(item, where, "a text block")
        if block.get("type") != "text":
            raise _unsupported_block(block.get("type"), where, "text")
        texts.append(_text_part(block, where)["text"])
    return "\n\n".join(texts)


def _image_part(block: dict[str, Any], field: str) -> dict[str, Any]:
    only_known(block, field, ("type", "source", *_CACHE), "an image block")
    where = f"{field}.source"
    source = object_at(block.get("source"), where, "an image source")
    kind = source.get("type")
    if kind == "base64":
        only_known(source, where, ("type", "media_type", "data"), "a base64 source")
        media_type = source.get("media_type")
        if media_type not in IMAGE_MEDIA_TYPES:
            raise InvalidInput(
                f"{where}.media_type: must be one of {', '.join(IMAGE_MEDIA_TYPES)}, "
                f"got {shown(media_type)}",
                field=f"{where}.media_type",
            )
        data = source.get("data")
        if not isinstance(data, str) or not data:
            raise InvalidInput(f"{where}.data: required, the base64 image", field=f"{where}.data")
        url = f"data:{media_type};base64,{data}"
    elif kind == "url":
        only_known(source, where, ("type", "url"), "a url source")
        url = source.get("url")  # type: ignore[assignment]
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise InvalidInput(f"{where}.url: must be an http(s) URL", field=f"{where}.url")
    else:
        raise InvalidInput(
            f"{where}.type: must be 'base64' or 'url', got {shown(kind)} (file sources are not "
            "supported; send the image itself)",
            field=f"{where}.type",
        )
    return {"type": "image_url", "image_url": {"url": url}}


def _tool_call(block: dict[str, Any], field: str) -> dict[str, Any]:
    only_known(block, field, ("type", "id", "name", "input", *_CACHE), "a tool_use block")
    call_id = block.get("id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidInput(f"{field}.id: required, the call's id", field=f"{field}.id")
    name = tool_name(block.get("name"), f"{field}.name")
    arguments = object_at(block.get("input"), f"{field}.input", "the tool's input (an object)")
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": _JSON.encode(arguments)},
    }


def _tool_message(block: dict[str, Any], field: str) -> dict[str, Any]:
    """A ``tool_result`` block as a ``tool`` message; ``is_error`` becomes an ``Error:`` prefix."""
    only_known(
        block, field, ("type", "tool_use_id", "content", "is_error", *_CACHE), "a tool_result"
    )
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidInput(
            f"{field}.tool_use_id: required, the id of the tool_use it answers",
            field=f"{field}.tool_use_id",
        )
    is_error = block.get("is_error", False)
    if not isinstance(is_error, bool):
        raise InvalidInput(f"{field}.is_error: must be true or false", field=f"{field}.is_error")
    content = block.get("content", "")
    where = f"{field}.content"
    if isinstance(content, str):
        parts = [{"type": "text", "text": content}]
    else:
        parts = []
        for index, (part, kind) in enumerate(_blocks(content, where)):
            if kind == "text":
                parts.append(_text_part(part, f"{where}.{index}"))
            elif kind == "image":
                parts.append(_image_part(part, f"{where}.{index}"))
            else:
                raise _unsupported_block(kind, f"{where}.{index}", "text and image")
    if is_error:
        first = parts[0]
        if first["type"] == "text":
            parts[0] = {"type": "text", "text": f"Error: {first['text']}"}
        else:
            parts.insert(0, {"type": "text", "text": "Error:"})
    return {"role": "tool", "tool_call_id": call_id, "content": _collapsed(parts)}


def _collapsed(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """Text alone as a string (what every provider takes), else the list of parts."""
    if all(part["type"] == "text" for part in parts):
        return "\n\n".join(part["text"] for part in parts)
    return parts
