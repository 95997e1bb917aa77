"""A fake OpenAI chat-completions upstream: the real wire format, JSON and SSE, with faults."""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from . import _openai_tools as tools
from .faults import Fault, StreamEvents
from .prefill import continue_reply, prefill_text
from .server import FakeUpstream, RecordedRequest, Responder

_ERROR_TYPES = {429: "requests", 500: "server_error", 503: "server_error"}
_ERROR_MESSAGES = {
    429: "Rate limit reached for requests. Please try again later.",
    500: "The server had an error while processing your request. Sorry about that!",
    503: "The server is overloaded or not ready yet.",
}
_MID_STREAM_ERROR = (
    b'data: {"error": {"message": "The server had an error while processing your request.", '
    b'"type": "server_error", "param": null, "code": null}}\n\n'
)
_BROKEN_BODY = b'{"id": "chatcmpl-x", "choices": ['
_MALFORMED_EVENT = b'data: {"choices": [{"delta": \n\n'
# OpenAI sends no ping event; an SSE comment is what a proxy in front of it would send.
_COMMENT = b": keep-alive\n\n"
_JSON_TYPES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}


class FakeOpenAI(FakeUpstream):
    """Answers ``POST <path>`` as OpenAI's Chat Completions API does.

    ``models`` lists the accepted model names (``None`` accepts any); with ``api_key`` set, a
    matching ``Authorization: Bearer`` header is required. The answer is ``reply``, streamed as
    ``pieces`` (default: its words, each with its leading space); ``chunk_count`` instead
    streams that many ``"tok "`` pieces, pre-encoded, for benchmarks. ``max_completion_tokens``
    (or ``max_tokens``) smaller than the number of pieces cuts the answer to that many pieces
    with finish reason ``"length"``. Completion ids are ``chatcmpl-fake1``, ``-fake2``, ...
    A stream fault counting more chunks than there are pieces applies after the last piece.
    Like the real API, a final assistant message is not continued: the answer is the whole
    reply anyway. With ``continues_prefill``, it is continued as :class:`FakeAnthropic` does.

    Tools: with ``tool_calls`` (``[{"name": ..., "arguments": '{"city": "Paris"}'}, ...]``) a
    request offering tools (``tool_choice`` not ``"none"``) is answered with those calls, ids
    ``call_fake1``, ``call_fake2``, ...: whole (``message.tool_calls``, null content, finish
    reason ``"tool_calls"``, or ``"stop"`` for a named ``tool_choice`` as the real API says),
    or streamed as ``delta.tool_calls`` pieces, each call's arguments
    ``tool_argument_pieces`` characters at a time (tokens cut), parallel calls interleaved by
    index. A request whose last message is a tool result gets ``reply``. With ``json_reply``,
    a request whose ``response_format`` asks for JSON gets that object as its JSON text.
    Tools, tool results that do not answer a call, and ``response_format`` are refused with
    the real API's 400 errors.
    """

    def __init__(
        self,
        *,
        path: str = "/v1/chat/completions",
        models: Sequence[str] | None = ("gpt-4o-mini",),
        api_key: str | None = None,
        reply: str = "Hello! How can I help you today?",
        pieces: Sequence[str] | None = None,
        chunk_count: int | None = None,
        continues_prefill: bool = False,
        tool_calls: Sequence[Mapping[str, str]] | None = None,
        tool_argument_pieces: int = 3,
        json_reply: Any = None,
    ) -> None:
        super().__init__()
        self.path = path
        self.models = None if models is None else tuple(models)
        self.api_key = api_key
        self.reply = reply
        self.pieces = list(pieces) if pieces is not None else None
        self.chunk_count = chunk_count
        self.continues_prefill = continues_prefill
        self.tool_calls = [dict(call) for call in tool_calls or ()]
        self.tool_argument_pieces = max(1, tool_argument_pieces)
        self.json_reply = json_reply
        self._ids = itertools.count(1)
        self._call_ids = itertools.count(1)

    def error_body(self, status: int, message: str) -> Any:
        """OpenAI's error object for an injected status."""
        return _error(
            _ERROR_MESSAGES.get(status, message),
            _ERROR_TYPES.get(status, "invalid_request_error"),
            code="rate_limit_exceeded" if status == 429 else None,
        )

    def handle(self, request: RecordedRequest, fault: Fault | None, responder: Responder) -> None:
        """Validate the request as the real API does, then answer it whole or streamed."""
        problem = self._problem(request)
        if problem is not None:
            responder.send_json(*problem)
            return
        payload = request.json
        model = payload["model"]
        calls = tools.calls_to_make(payload, self.tool_calls)
        if calls:
            self._call_tools(responder, fault, payload, calls)
            return
        pieces = self._pieces_for(payload)
        prefill = prefill_text(payload["messages"]) if self.continues_prefill else None
        if prefill is not None:
            pieces = continue_reply(pieces, prefill)
        reason = "stop"
        limit = _token_limit(payload)
        if limit is not None and limit < len(pieces):
            pieces, reason = pieces[:limit], "length"
        # next() on a count is atomic, so concurrent requests get distinct ids.
        ident = f"chatcmpl-fake{next(self._ids)}"
        usage = _usage(payload["messages"], len(pieces))
        if payload.get("stream"):
            options = payload.get("stream_options") or {}
            include_usage = bool(options.get("include_usage"))
            self._stream(
                responder, fault, ident, model, pieces, reason, usage if include_usage else None
            )
        else:
            answer = _completion(ident, model, "".join(pieces), reason, usage)
            self.send_whole(responder, fault, answer, _BROKEN_BODY)

    def _problem(self, request: RecordedRequest) -> tuple[int, Any] | None:
        if request.method != "POST" or request.path != self.path:
            return 404, _error(
                f"Invalid URL ({request.method} {request.path})", "invalid_request_error"
            )
        if self.api_key is not None:
            sent = request.headers.get("authorization", "")
            if sent != f"Bearer {self.api_key}":
                return 401, _error(
                    f"Incorrect API key provided: {_mask(sent.removeprefix('Bearer '))}. You can "
                    "find your API key at https://platform.openai.com/account/api-keys.",
                    "invalid_request_error",
                    code="invalid_api_key",
                )
        payload = request.json
        if not isinstance(payload, dict):
            return 400, _error(
                "We could not parse the JSON body of your request.", "invalid_request_error"
            )
        for name in ("model", "messages"):
            if name not in payload:
                return 400, _error(
                    f"Missing required parameter: '{name}'.", "invalid_request_error", param=name
                )
        for name, expected in (("model", str), ("messages", list)):
            if not isinstance(payload[name], expected):
                return 400, _invalid_type(name, expected, payload[name])
        if not payload["messages"]:
            return 400, _error(
                "Invalid 'messages': empty array. Expected an array with minimum length 1, but "
                "got an empty array instead.",
                "invalid_request_error",
                param="messages",
                code="empty_array",
            )
        for name in ("max_completion_tokens", "max_tokens"):
            value = payload.get(name)
            if value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool):
                return 400, _invalid_type(name, int, value)
            if value < 1:
                return 400, _error(
                    f"Invalid '{name}': integer below minimum value. Expected a value >= 1, but "
                    f"got {value} instead.",
                    "invalid_request_error",
                    param=name,
                    code="integer_below_min_value",
                )
        problem = (
            tools.tools_problem(payload)
            or tools.conversation_problem(payload["messages"])
            or tools.format_problem(payload)
        )
        if problem is not None:
            return problem
        if self.models is not None and payload["model"] not in self.models:
            return 404, _error(
                f"The model `{payload['model']}` does not exist or you do not have access to it.",
                "invalid_request_error",
                code="model_not_found",
            )
        return None

    def _pieces_for(self, payload: dict[str, Any]) -> list[str]:
        if self.chunk_count is not None:
            return ["tok "] * self.chunk_count
        if self.json_reply is not None and tools.wants_json(payload):
            text = json.dumps(self.json_reply)
            return [text[start : start + 8] for start in range(0, len(text), 8)]
        if self.pieces is not None:
            return list(self.pieces)
        return re.findall(r"\s*\S+", self.reply) or [self.reply]

    def _call_tools(
        self,
        responder: Responder,
        fault: Fault | None,
        payload: dict[str, Any],
        calls: list[dict[str, str]],
    ) -> None:
        ident = f"chatcmpl-fake{next(self._ids)}"
        ids = [f"call_fake{next(self._call_ids)}" for _ in calls]
        # The real API ends a call it was forced to make (a named tool_choice) with "stop".
        reason = "stop" if isinstance(payload.get("tool_choice"), dict) else "tool_calls"
        model = payload["model"]
        if not payload.get("stream"):
            usage = _usage(payload["messages"], sum(len(c["arguments"]) for c in calls))
            answer = _completion(ident, model, "", reason, usage)
            answer["choices"][0]["message"] = tools.whole_message(ids, calls)
            self.send_whole(responder, fault, answer, _BROKEN_BODY)
            return
        deltas = tools.streamed_deltas(ids, calls, self.tool_argument_pieces)
        usage = _usage(payload["messages"], len(deltas))
        options = payload.get("stream_options") or {}
        self._stream(
            responder,
            fault,
            ident,
            model,
            [],
            reason,
            usage if options.get("include_usage") else None,
            deltas=deltas,
        )

    def _stream(
        self,
        responder: Responder,
        fault: Fault | None,
        ident: str,
        model: str,
        pieces: list[str],
        reason: str,
        usage: dict[str, int] | None,
        *,
        deltas: list[dict[str, Any]] | None = None,
    ) -> None:
        created = int(time.time())
        with_usage = usage is not None

        def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
            chunk: dict[str, Any] = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            if with_usage:
                chunk["usage"] = None
            return b"data: " + json.dumps(chunk).encode() + b"\n\n"

        responder.start_stream("text/event-stream; charset=utf-8")
        if deltas:
            # The first piece of a tool-calling answer comes with the role, content null.
            first, *rest = deltas
            responder.write_chunk(
                event({"role": "assistant", "content": None, **first, "refusal": None})
            )
            encoded = [event(delta) for delta in rest]
        else:
            responder.write_chunk(event({"role": "assistant", "content": "", "refusal": None}))
            encoded = self._encoded(event, pieces)
        events = StreamEvents(
            error=_MID_STREAM_ERROR,
            malformed=_MALFORMED_EVENT,
            comment=_COMMENT,
            ping=_COMMENT,
            empty_delta=event({"content": ""}),
        )
        if not self.stream_content(responder, fault, encoded, events):
            return
        responder.write_chunk(event({}, reason))
        if usage is not None:
            final = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [],
                "usage": usage,
            }
            responder.write_chunk(b"data: " + json.dumps(final).encode() + b"\n\n")
        responder.write_chunk(b"data: [DONE]\n\n")
        responder.end_stream()

    def _encoded(self, event: Any, pieces: list[str]) -> list[bytes]:
        if self.chunk_count is None:
            return [event({"content": piece}) for piece in pieces]
        # Benchmarks: every content event of this stream is the same bytes; encode them once.
        return [event({"content": "tok "})] * len(pieces)


def _token_limit(payload: dict[str, Any]) -> int | None:
    limit = payload.get("max_completion_tokens")
    if limit is None:
        limit = payload.get("max_tokens")
    return limit if isinstance(limit, int) else None


def _invalid_type(name: str, expected: type, value: Any) -> Any:
    return _error(
        f"Invalid type for '{name}': expected {_json_type(expected)}, but got "
        f"{_json_type(type(value))} instead.",
        "invalid_request_error",
        param=name,
        code="invalid_type",
    )


def _json_type(kind: type) -> str:
    if kind is type(None):
        return "null"
    if issubclass(kind, list):
        return "an array"
    if issubclass(kind, dict):
        return "an object"
    return _JSON_TYPES.get(kind, "a value")


_error = tools.error


def _completion(ident: str, model: str, text: str, reason: str, usage: dict[str, int]) -> Any:
    return {
        "id": ident,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_fake",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": reason,
            }
        ],
        "usage": usage,
    }


def _usage(messages: list[Any], completion_tokens: int) -> dict[str, int]:
    words = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            words += len(content.split())
        elif isinstance(content, list):
            words += sum(
                len(str(part.get("text", "")).split()) for part in content if isinstance(part, dict)
            )
    return {
        "prompt_tokens": words,
        "completion_tokens": completion_tokens,
        "total_tokens": words + completion_tokens,
    }


def _mask(key: str) -> str:
    if len(key) <= 8:
        return "***"
    return f"{key[:3]}***{key[-4:]}"
