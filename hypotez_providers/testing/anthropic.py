"""A fake Anthropic Messages API upstream: the real wire format, JSON and SSE, with faults."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from typing import Any

from .server import FakeUpstream, Fault, RecordedRequest, Responder, cut_stream

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_MID_STREAM_ERROR = {
    "type": "error",
    "error": {"type": "overloaded_error", "message": "Overloaded"},
}
_ERROR_EVENT = f"event: error\ndata: {json.dumps(_MID_STREAM_ERROR)}\n\n".encode()


class FakeAnthropic(FakeUpstream):
    """Answers ``POST /v1/messages`` as Anthropic's Messages API does.

    ``models`` lists the accepted names (``None`` accepts any); with ``api_key`` set, a
    matching ``x-api-key`` header is required. Every request must carry ``anthropic-version``,
    ``model``, ``messages`` and ``max_tokens``; a ``system`` role inside ``messages`` is
    refused, as the real API does. The answer is ``reply``, streamed as ``pieces`` (default:
    its words, each with its leading space); ``max_tokens`` below the number of pieces cuts it
    with stop reason ``max_tokens``.
    """

    def __init__(
        self,
        *,
        models: Sequence[str] | None = ("claude-haiku-4-5",),
        api_key: str | None = None,
        reply: str = "Hello! How can I help you today?",
        pieces: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        self.models = None if models is None else tuple(models)
        self.api_key = api_key
        self.reply = reply
        self.pieces = list(pieces) if pieces is not None else None
        self._ids = itertools.count(1)

    def error_body(self, status: int, message: str) -> Any:
        """Anthropic's error object for an injected status."""
        return _error(_ERROR_TYPES.get(status, "api_error"), message)

    def handle(self, request: RecordedRequest, fault: Fault | None, responder: Responder) -> None:
        """Validate the request as the real API does, then answer it whole or streamed."""
        problem = self._problem(request)
        if problem is not None:
            responder.send_json(*problem)
            return
        payload = request.json
        pieces = list(self.pieces) if self.pieces is not None else _words(self.reply)
        stop_reason = "end_turn"
        if payload["max_tokens"] < len(pieces):
            pieces, stop_reason = pieces[: payload["max_tokens"]], "max_tokens"
        ident = f"msg_fake{next(self._ids)}"
        input_tokens = _input_tokens(payload)
        if payload.get("stream"):
            self._stream(
                responder, fault, ident, payload["model"], pieces, stop_reason, input_tokens
            )
        elif fault is not None and fault.malformed:
            responder.send_text(200, '{"id": "msg_x", "content": [', "application/json")
        else:
            responder.send_json(
                200,
                {
                    "id": ident,
                    "type": "message",
                    "role": "assistant",
                    "model": payload["model"],
                    "content": [{"type": "text", "text": "".join(pieces)}],
                    "stop_reason": stop_reason,
                    "stop_sequence": None,
                    "usage": {"input_tokens": input_tokens, "output_tokens": len(pieces)},
                },
            )

    def _problem(self, request: RecordedRequest) -> tuple[int, Any] | None:
        if request.method != "POST" or request.path != "/v1/messages":
            return 404, _error("not_found_error", "Not Found")
        if self.api_key is not None and request.headers.get("x-api-key") != self.api_key:
            return 401, _error("authentication_error", "invalid x-api-key")
        if "anthropic-version" not in request.headers:
            return 400, _error("invalid_request_error", "anthropic-version: header is required")
        payload = request.json
        if not isinstance(payload, dict):
            return 400, _error("invalid_request_error", "Request body is not valid JSON")
        for name in ("model", "messages", "max_tokens"):
            if name not in payload:
                return 400, _error("invalid_request_error", f"{name}: Field required")
        if not isinstance(payload["max_tokens"], int) or payload["max_tokens"] < 1:
            return 400, _error("invalid_request_error", "max_tokens: must be at least 1")
        messages = payload["messages"]
        if not isinstance(messages, list) or not messages:
            return 400, _error(
                "invalid_request_error", "messages: at least one message is required"
            )
        for index, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
                return 400, _error(
                    "invalid_request_error",
                    f"messages.{index}.role: Input should be 'user' or 'assistant'",
                )
        if self.models is not None and payload["model"] not in self.models:
            return 404, _error("not_found_error", f"model: {payload['model']}")
        return None

    def _stream(
        self,
        responder: Responder,
        fault: Fault | None,
        ident: str,
        model: str,
        pieces: list[str],
        stop_reason: str,
        input_tokens: int,
    ) -> None:
        def event(name: str, data: Any) -> bytes:
            return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()

        start = {
            "type": "message_start",
            "message": {
                "id": ident,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": input_tokens, "output_tokens": 1},
            },
        }
        responder.start_stream("text/event-stream; charset=utf-8")
        responder.write_chunk(event("message_start", start))
        block = {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "text", "text": ""},
        }
        responder.write_chunk(event("content_block_start", block))
        responder.write_chunk(event("ping", {"type": "ping"}))
        if fault is not None and fault.malformed:
            responder.write_chunk(
                b'event: content_block_delta\ndata: {"type": "content_block_delta", \n\n'
            )
        last = len(pieces) - 1
        for index, piece in enumerate(pieces):
            if cut_stream(responder, fault, index, _ERROR_EVENT):
                return
            if index == last:
                self.wait_before_last()
            delta = {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": piece},
            }
            responder.write_chunk(event("content_block_delta", delta))
            if index == last:
                self.last_chunk_sent.set()
        if cut_stream(responder, fault, len(pieces), _ERROR_EVENT, past_end=True):
            return
        responder.write_chunk(
            event("content_block_stop", {"type": "content_block_stop", "index": 0})
        )
        final = {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": len(pieces)},
        }
        responder.write_chunk(event("message_delta", final))
        responder.write_chunk(event("message_stop", {"type": "message_stop"}))
        responder.end_stream()


def _error(kind: str, message: str) -> Any:
    return {"type": "error", "error": {"type": kind, "message": message}}


def _words(text: str) -> list[str]:
    return re.findall(r"\s*\S+", text) or [text]


def _input_tokens(payload: dict[str, Any]) -> int:
    words = 0
    system = payload.get("system")
    if isinstance(system, str):
        words += len(system.split())
    for message in payload["messages"]:
        content = message.get("content")
        if isinstance(content, str):
            words += len(content.split())
        elif isinstance(content, list):
            words += sum(
                len(str(block.get("text", "")).split())
                for block in content
                if isinstance(block, dict)
            )
    return words
