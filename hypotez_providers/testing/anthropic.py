"""A fake Anthropic Messages API upstream: the real wire format, JSON and SSE, with faults."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from . import _anthropic_tools as tools
from .faults import Fault, StreamEvents
from .prefill import continue_reply, prefill_text
from .server import FakeUpstream, RecordedRequest, Responder

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
_ERROR_MESSAGES = {
    401: "invalid x-api-key",
    403: "Your API key does not have permission to use the specified resource.",
    404: "The requested resource could not be found.",
    413: "Request exceeds the maximum allowed number of bytes.",
    429: "This request would exceed the rate limit for your organization. Please try again later.",
    500: "Internal server error",
    529: "Overloaded",
}
_MID_STREAM_ERROR = {
    "type": "error",
    "error": {"type": "overloaded_error", "message": "Overloaded"},
}
_ERROR_EVENT = f"event: error\ndata: {json.dumps(_MID_STREAM_ERROR)}\n\n".encode()
_BROKEN_BODY = b'{"id": "msg_x", "content": ['
_MALFORMED_EVENT = b'event: content_block_delta\ndata: {"type": "content_block_delta", \n\n'
_COMMENT = b": keep-alive\n\n"
_TRAILING_WHITESPACE = "final assistant content cannot end with trailing whitespace"
_SYSTEM_ROLE = (
    'messages: Unexpected role "system". The Messages API accepts a top-level `system` '
    'parameter, not "system" as an input message role.'
)
# next() on a count is atomic, so concurrent requests get distinct ids.
_REQUEST_IDS = itertools.count(1)


class FakeAnthropic(FakeUpstream):
    """Answers ``POST /v1/messages`` as Anthropic's Messages API does.

    ``models`` lists the accepted names (``None`` accepts any); with ``api_key`` set, a
    matching ``x-api-key`` header is required. Every request must carry ``anthropic-version``,
    ``model``, ``messages`` and ``max_tokens``; a ``system`` role inside ``messages`` or an
    empty message is refused, as the real API does (consecutive same-role messages are
    accepted). The answer is ``reply``, streamed as ``pieces`` (default: its words, each with
    its leading space), one output token per piece: ``max_tokens`` below the number of pieces
    cuts it with stop reason ``max_tokens``, and one of the request's ``stop_sequences`` found
    in it ends it there with stop reason ``stop_sequence``. Message ids are ``msg_fake1``,
    ``msg_fake2``, ...; every answer and error carries a request id, as the real API's do.

    A final assistant message is a prefill, which the answer continues, as the real API does.
    Its text (the string, or its text blocks joined) must not end with whitespace, else the
    answer is a 400 ``invalid_request_error`` with the real API's message. When the reply
    (the pieces joined) starts with the prefill, the answer is only the rest of it, in the
    remaining pieces (the piece the prefill ends inside is cut to its rest); otherwise it is
    the whole reply.

    Tools: with ``tool_calls`` (``[{"name": ..., "arguments": '{"city": "Paris"}'}, ...]``) a
    request offering tools (``tool_choice`` not ``none``) is answered with those calls as
    ``tool_use`` blocks, ids ``toolu_fake1``, ``toolu_fake2``, ..., stop reason ``tool_use``:
    whole, or streamed block by block (``content_block_start`` with input ``{}``, the
    arguments as ``input_json_delta`` pieces ``tool_argument_pieces`` characters at a time,
    tokens cut, ``content_block_stop``; every event after the preamble counts as a piece for
    the stream faults). A ``tool`` choice naming a tool with no configured call calls it with
    ``json_reply`` (or ``{}``) as input; ``disable_parallel_tool_use`` keeps the first call. A
    request whose last message holds ``tool_result`` blocks gets ``reply``. With
    ``json_reply``, a request asking for structured output (``output_config.format``) gets
    that object as its JSON text. Tools, ``tool_choice``, ``tool_use`` ids not answered by
    ``tool_result`` blocks in the next message (or results not first in it) and a bad
    ``output_config.format`` are refused with 400 ``invalid_request_error``, as the real API
    does.
    """

    def __init__(
        self,
        *,
        models: Sequence[str] | None = ("claude-haiku-4-5",),
        api_key: str | None = None,
        reply: str = "Hello! How can I help you today?",
        pieces: Sequence[str] | None = None,
        tool_calls: Sequence[Mapping[str, str]] | None = None,
        tool_argument_pieces: int = 3,
        json_reply: Any = None,
    ) -> None:
        super().__init__()
        self.models = None if models is None else tuple(models)
        self.api_key = api_key
        self.reply = reply
        self.pieces = list(pieces) if pieces is not None else None
        self.tool_calls = [dict(call) for call in tool_calls or ()]
        self.tool_argument_pieces = max(1, tool_argument_pieces)
        self.json_reply = json_reply
        self._ids = itertools.count(1)
        self._call_ids = itertools.count(1)

    def error_body(self, status: int, message: str) -> Any:
        """Anthropic's error object for an injected status (other 4xx: invalid_request_error)."""
        kind = _ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")
        return _error(kind, _ERROR_MESSAGES.get(status, message))

    def handle(self, request: RecordedRequest, fault: Fault | None, responder: Responder) -> None:
        """Validate the request as the real API does, then answer it whole or streamed."""
        problem = self._problem(request)
        if problem is not None:
            responder.send_json(*problem)
            return
        payload = request.json
        calls = tools.calls_to_make(payload, self.tool_calls, self.json_reply)
        if calls:
            self._call_tools(responder, fault, payload, calls)
            return
        if self.json_reply is not None and tools.wants_json(payload):
            text = json.dumps(self.json_reply)
            pieces = [text[start : start + 8] for start in range(0, len(text), 8)]
        elif self.pieces is not None:
            pieces = list(self.pieces)
        else:
            pieces = _words(self.reply)
        prefill = prefill_text(payload["messages"])
        if prefill is not None:
            pieces = continue_reply(pieces, prefill)
        pieces, stop_reason, stop_sequence = _generate(
            pieces, payload["max_tokens"], payload.get("stop_sequences") or ()
        )
        ident = f"msg_fake{next(self._ids)}"
        usage = {
            "input_tokens": _input_tokens(payload),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": len(pieces),
        }
        headers = {"request-id": f"req_fake{next(_REQUEST_IDS)}"}
        message = {
            "id": ident,
            "type": "message",
            "role": "assistant",
            "model": payload["model"],
            "content": [{"type": "text", "text": "".join(pieces)}],
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
            "usage": usage,
        }
        if payload.get("stream"):
            self._stream(responder, fault, message, pieces, headers)
        else:
            self.send_whole(responder, fault, message, _BROKEN_BODY, headers)

    def _call_tools(
        self,
        responder: Responder,
        fault: Fault | None,
        payload: dict[str, Any],
        calls: list[dict[str, str]],
    ) -> None:
        ids = [f"toolu_fake{next(self._call_ids)}" for _ in calls]
        message = {
            "id": f"msg_fake{next(self._ids)}",
            "type": "message",
            "role": "assistant",
            "model": payload["model"],
            "content": tools.tool_use_blocks(ids, calls),
            "stop_reason": "tool_use",
            "stop_sequence": None,
            "usage": {
                "input_tokens": _input_tokens(payload),
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": sum(len(call["arguments"]) for call in calls),
            },
        }
        headers = {"request-id": f"req_fake{next(_REQUEST_IDS)}"}
        if payload.get("stream"):
            events = tools.streamed_blocks(ids, calls, self.tool_argument_pieces)
            self._stream(responder, fault, message, [], headers, blocks=events)
        else:
            self.send_whole(responder, fault, message, _BROKEN_BODY, headers)

    def _problem(self, request: RecordedRequest) -> tuple[int, Any] | None:
        invalid = "invalid_request_error"
        if request.method != "POST" or request.path != "/v1/messages":
            return 404, _error("not_found_error", "Not Found")
        if self.api_key is not None:
            sent = request.headers.get("x-api-key")
            if sent is None:
                return 401, _error("authentication_error", "x-api-key header is required")
            if sent != self.api_key:
                return 401, _error("authentication_error", "invalid x-api-key")
        if "anthropic-version" not in request.headers:
            return 400, _error(invalid, "anthropic-version: header is required")
        payload = request.json
        if not isinstance(payload, dict):
            return 400, _error(invalid, "Request body is not valid JSON")
        for name in ("model", "messages", "max_tokens"):
            if name not in payload:
                return 400, _error(invalid, f"{name}: Field required")
        max_tokens = payload["max_tokens"]
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
            return 400, _error(invalid, "max_tokens: Input should be a valid integer")
        if max_tokens < 1:
            return 400, _error(invalid, "max_tokens: Input should be greater than or equal to 1")
        messages = payload["messages"]
        if not isinstance(messages, list) or not messages:
            return 400, _error(invalid, "messages: at least one message is required")
        for index, message in enumerate(messages):
            role = message.get("role") if isinstance(message, dict) else None
            if role == "system":
                return 400, _error(invalid, _SYSTEM_ROLE)
            if role not in ("user", "assistant"):
                return 400, _error(
                    invalid, f"messages.{index}.role: Input should be 'user' or 'assistant'"
                )
            final_assistant = role == "assistant" and index == len(messages) - 1
            if not message.get("content") and not final_assistant:
                return 400, _error(
                    invalid,
                    f"messages.{index}: all messages must have non-empty content except for "
                    "the optional final assistant message",
                )
        prefill = prefill_text(messages)
        if prefill is not None and prefill != prefill.rstrip():
            return 400, _error(invalid, _TRAILING_WHITESPACE)
        problem = (
            tools.tools_problem(payload)
            or tools.conversation_problem(messages)
            or tools.format_problem(payload)
        )
        if problem is not None:
            return problem[0], _error(invalid, problem[1])
        if self.models is not None and payload["model"] not in self.models:
            return 404, _error("not_found_error", f"model: {payload['model']}")
        return None

    def _stream(
        self,
        responder: Responder,
        fault: Fault | None,
        message: dict[str, Any],
        pieces: list[str],
        headers: dict[str, str],
        *,
        blocks: list[tuple[str, dict[str, Any]]] | None = None,
    ) -> None:
        def event(name: str, data: Any) -> bytes:
            return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()

        usage = message["usage"]
        start = {
            **message,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**usage, "output_tokens": 1},
        }
        responder.start_stream("text/event-stream; charset=utf-8", headers=headers)
        responder.write_chunk(event("message_start", {"type": "message_start", "message": start}))
        if blocks is None:
            block = {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            }
            responder.write_chunk(event("content_block_start", block))
        ping = event("ping", {"type": "ping"})
        responder.write_chunk(ping)

        def delta(text: str) -> bytes:
            data = {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": text},
            }
            return event("content_block_delta", data)

        events = StreamEvents(
            error=_ERROR_EVENT,
            malformed=_MALFORMED_EVENT,
            comment=_COMMENT,
            ping=ping,
            empty_delta=delta(""),
        )
        if blocks is None:
            content = [delta(p) for p in pieces]
        else:
            content = [event(name, data) for name, data in blocks]
        if not self.stream_content(responder, fault, content, events):
            return
        if blocks is None:
            responder.write_chunk(
                event("content_block_stop", {"type": "content_block_stop", "index": 0})
            )
        final = {
            "type": "message_delta",
            "delta": {
                "stop_reason": message["stop_reason"],
                "stop_sequence": message["stop_sequence"],
            },
            "usage": {"output_tokens": usage["output_tokens"]},
        }
        responder.write_chunk(event("message_delta", final))
        responder.write_chunk(event("message_stop", {"type": "message_stop"}))
        responder.end_stream()


def _error(kind: str, message: str) -> Any:
    return {
        "type": "error",
        "error": {"type": kind, "message": message},
        "request_id": f"req_fake{next(_REQUEST_IDS)}",
    }


def _words(text: str) -> list[str]:
    return re.findall(r"\s*\S+", text) or [text]


def _generate(
    pieces: list[str], max_tokens: int, stop_sequences: Sequence[str]
) -> tuple[list[str], str, str | None]:
    """The pieces actually sent, the stop reason and the stop sequence that ended them."""
    sent: list[str] = []
    text = ""
    for piece in pieces:
        if len(sent) == max_tokens:
            return sent, "max_tokens", None
        candidate = text + piece
        found = [
            (candidate.find(stop), stop) for stop in stop_sequences if stop and stop in candidate
        ]
        if found:
            # The stop sequence itself is not part of the answer.
            at, stop = min(found)
            if candidate[len(text) : at]:
                sent.append(candidate[len(text) : at])
            return sent, "stop_sequence", stop
        sent.append(piece)
        text = candidate
    return sent, "end_turn", None


def _input_tokens(payload: dict[str, Any]) -> int:
    """Words as tokens: the system prompt and every text of the messages."""
    words = 0
    for content in [payload.get("system")] + [m.get("content") for m in payload["messages"]]:
        if isinstance(content, str):
            words += len(content.split())
        elif isinstance(content, list):
            words += sum(
                len(str(block.get("text", "")).split())
                for block in content
                if isinstance(block, dict)
            )
    return words
