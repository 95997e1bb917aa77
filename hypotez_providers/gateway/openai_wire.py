"""OpenAI's chat completions on the wire: requests in, answers, SSE chunks and errors out.

Our messages and options already have OpenAI's shapes, so a request mostly passes through:
the router validates it (and names the field at fault) before anything is sent. Fields the
router has no option for are passed to the provider as ``extra``; a few that only make sense
to OpenAI itself, or that we cannot honour, are ignored or refused here.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from typing import Any

import msgspec

from ..errors import InvalidInput
from ..options import LIBRARY_FIELDS, CompletionOptions
from ..results import Chunk, Completion, Usage
from .call import GatewayCall
from .failures import Failure

#: Fields read into the call itself rather than passed on.
_CALL_FIELDS = frozenset(("model", "messages", "stream", "stream_options"))
#: Options the router knows by name.
_OPTIONS = frozenset(CompletionOptions.model_fields) - {"extra"}
#: Fields that change nothing for the answer (accounting, storage, tracing): dropped.
_IGNORED = frozenset(("user", "store", "metadata", "service_tier", "prediction"))
_ERROR_TYPES = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "not_found": "not_found_error",
    "too_large": "invalid_request_error",
    "rate_limit": "rate_limit_error",
    "upstream": "api_error",
    "overloaded": "api_error",
    "timeout": "timeout_error",
    "internal": "api_error",
}
_FINISH = {"stop", "length", "tool_calls", "content_filter", "function_call"}
_DUMPS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def parse_request(body: object) -> GatewayCall:
    """The call a chat completions request asks for; :class:`InvalidInput` names what is wrong.

    ``max_completion_tokens`` is read as ``max_tokens``; ``n`` must be 1 and ``logprobs``
    false (one answer, no log probabilities, from every provider alike).
    """
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object", field="body")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidInput("model: give the model (or alias) to ask, a string", field="model")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise InvalidInput("messages: give a list of chat messages", field="messages")
    stream = body.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise InvalidInput("stream: must be true or false", field="stream")
    include_usage = _include_usage(body.get("stream_options"))
    options: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for name, value in body.items():
        if name in _CALL_FIELDS or name in _IGNORED or value is None:
            continue
        if name == "max_completion_tokens":
            options["max_tokens"] = value
        elif name == "n":
            _refuse_unless(name, value, 1, "one answer per request is supported; drop n")
        elif name == "logprobs":
            _refuse_unless(name, value, False, "log probabilities are not supported; drop it")
        elif name in _OPTIONS:
            options[name] = value
        elif name in LIBRARY_FIELDS:
            continue
        else:
            extra[name] = value  # a vendor's own option: passed on as the router's extra
    if extra:
        options["extra"] = extra
    return GatewayCall(
        model=model,
        messages=messages,
        stream=bool(stream),
        options=options,
        include_usage=include_usage,
    )


def _include_usage(stream_options: object) -> bool:
    if stream_options is None:
        return False
    if not isinstance(stream_options, dict):
        raise InvalidInput("stream_options: must be an object", field="stream_options")
    value = stream_options.get("include_usage", False)
    if not isinstance(value, bool):
        raise InvalidInput(
            "stream_options.include_usage: must be true or false",
            field="stream_options.include_usage",
        )
    return value


def _refuse_unless(name: str, value: object, allowed: object, fix: str) -> None:
    if value != allowed or type(value) is not type(allowed):
        raise InvalidInput(f"{name}: {value!r} is not supported: {fix}", field=name)


def new_id() -> str:
    """A fresh completion id, ``chatcmpl-`` and 24 hex digits, as OpenAI's look."""
    return "chatcmpl-" + uuid.uuid4().hex[:24]


def _usage(usage: Usage | None) -> dict[str, int] | None:
    if usage is None:
        return None
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens or usage.prompt_tokens + usage.completion_tokens,
    }


def _finish(reason: str | None) -> str | None:
    if reason is None:
        return None
    return reason if reason in _FINISH else "stop"


def completion_body(completion: Completion, *, completion_id: str) -> dict[str, Any]:
    """The ``chat.completion`` object for a whole answer."""
    message = completion.message()
    message["refusal"] = None
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": completion.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": _finish(completion.finish_reason)
                or ("tool_calls" if completion.tool_calls else "stop"),
            }
        ],
        "usage": _usage(completion.usage),
    }


class ChunkStream:
    """Encodes a routed stream as OpenAI's ``chat.completion.chunk`` server-sent events.

    One encoder per response: :meth:`feed` each :class:`Chunk`, then :meth:`finish` (the finish
    reason if none came, the usage chunk when asked, ``data: [DONE]``) or :meth:`error` (an
    in-band error event, never ``[DONE]``, so a client knows the answer is incomplete).
    """

    def __init__(self, *, completion_id: str, model: str, include_usage: bool) -> None:
        self._head = (
            f'data: {{"id":"{completion_id}","object":"chat.completion.chunk",'
            f'"created":{int(time.time())},"model":{_DUMPS(model)},'
        ).encode()
        self._include_usage = include_usage
        self._role_sent = False
        self._finished = False
        self._usage: Usage | None = None
        self._text_head = self._head + b'"choices":[{"index":0,"delta":{"content":'

    def start(self) -> bytes:
        """Nothing: OpenAI's stream has no opening event (the first chunk carries the role)."""
        return b""

    def feed(self, chunk: Chunk) -> bytes:
        """The events for one chunk (``b""`` when it carries nothing a client would see)."""
        if (
            self._role_sent
            and chunk.text
            and chunk.finish_reason is None
            and chunk.usage is None
            and not chunk.tool_call_deltas
        ):
            # Nearly every chunk of an answer: only its text changes from one event to the next.
            return self._text_head + _encode_text(chunk.text) + _TEXT_TAIL
        if chunk.usage is not None:
            self._usage = chunk.usage
        delta: dict[str, Any] = {}
        if not self._role_sent:
            delta["role"] = "assistant"
        if chunk.text:
            delta["content"] = chunk.text
        if chunk.tool_call_deltas:
            delta["tool_calls"] = [_tool_delta(piece) for piece in chunk.tool_call_deltas]
        finish = _finish(chunk.finish_reason)
        if finish is None and len(delta) == (0 if self._role_sent else 1):
            return b""
        self._role_sent = True
        if finish is not None:
            self._finished = True
        return self._event(delta, finish)

    def finish(self) -> bytes:
        """The end of a complete answer: its finish reason if none was sent, usage, ``[DONE]``."""
        tail = b"" if self._finished else self._event({} if self._role_sent else _ROLE, "stop")
        if self._include_usage:
            usage = _usage(self._usage) or {
                "prompt_tokens": 0,
                "completion_tokens": 0,
                "total_tokens": 0,
            }
            tail += self._head + b'"choices":[],"usage":' + _dump(usage) + b"}\n\n"
        return tail + b"data: [DONE]\n\n"

    def error(self, failure: Failure) -> bytes:
        """An in-band error event: what the official clients raise as an API error."""
        return b"data: " + _dump(error_body(failure)) + b"\n\n"

    def _event(self, delta: dict[str, Any], finish: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return self._head + b'"choices":[' + _dump(choice) + b"]}\n\n"


_ROLE = {"role": "assistant"}
_TEXT_TAIL = b'},"logprobs":null,"finish_reason":null}]}\n\n'
_msgspec_encode = msgspec.json.Encoder().encode


def _dump(value: object) -> bytes:
    """Compact JSON as UTF-8; with a lone surrogate in it, as ASCII with escapes."""
    try:
        return _DUMPS(value).encode()
    except UnicodeEncodeError:
        return json.dumps(value, separators=(",", ":")).encode()


def _encode_text(text: str) -> bytes:
    """A JSON string, UTF-8; a lone surrogate (which UTF-8 cannot carry) is escaped instead."""
    try:
        return _msgspec_encode(text)
    except UnicodeEncodeError:
        return json.dumps(text).encode()


def _tool_delta(piece: Any) -> dict[str, Any]:
    function: dict[str, Any] = {"arguments": piece.arguments}
    out: dict[str, Any] = {"index": piece.index}
    if piece.id is not None:
        out["id"] = piece.id
        out["type"] = "function"
    if piece.name is not None:
        function["name"] = piece.name
    out["function"] = function
    return out


def error_body(failure: Failure) -> dict[str, Any]:
    """OpenAI's error object: ``{"error": {"message", "type", "param", "code"}}``."""
    code = "model_not_found" if failure.kind == "not_found" else None
    if failure.kind == "too_large":
        code = "request_too_large"
    return {
        "error": {
            "message": failure.message,
            "type": _ERROR_TYPES[failure.kind],
            "param": failure.param,
            "code": code,
        }
    }


def models_body(models: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """The ``GET /v1/models`` list from ``(model, owner)`` pairs."""
    return {
        "object": "list",
        "data": [
            {"id": model, "object": "model", "created": 0, "owned_by": owner}
            for model, owner in models
        ],
    }


def encode(body: object) -> bytes:
    """A response body as compact UTF-8 JSON."""
    return _dump(body)
