"""A fake Ollama upstream: its native API (``/api/chat`` over NDJSON, ``/api/tags``), faults."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from . import _ollama_tools as tools
from .faults import Fault, StreamEvents
from .prefill import continue_reply, prefill_text
from .server import FakeUpstream, RecordedRequest, Responder

#: What Ollama answers in the middle of a stream when the model runner fails.
MID_STREAM_ERROR = "an error was encountered while running the model"

_ERROR_MESSAGES = {
    429: "too many requests",
    500: "llama runner process has terminated: exit status 2",
    503: "server busy, please try again.  maximum pending requests exceeded",
}
# Fixed, plausible timings (nanoseconds, as Ollama reports them); tests never depend on them.
_LOAD_NS = 12_345_678
_PROMPT_NS_PER_TOKEN = 1_000_000
_EVAL_NS_PER_TOKEN = 20_000_000
_DIGEST = "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72"


class FakeOllama(FakeUpstream):
    """Answers as a local Ollama server does: ``POST /api/chat`` and ``GET /api/tags``.

    ``models`` are the installed models (``/api/tags`` lists them); a request names one with or
    without its ``:latest`` tag, any other model is a 404 asking to pull it. The answer is
    ``reply``, streamed as ``pieces`` (default: its words, each with its leading space). Ollama
    streams unless the request says ``"stream": false``: one JSON object per line, each in its
    own HTTP chunk, then a ``done: true`` line with the token counters. ``options.num_predict``
    smaller than the number of pieces cuts the answer with ``done_reason`` ``"length"``.
    Stream faults count content lines; NDJSON has no comments, so every keep-alive a stall
    sends is a line with empty content and ``done: false``, and an undecodable event is a
    broken JSON line. On a whole answer ``malformed`` breaks the body. A final assistant
    message is not continued (the answer is the whole reply) unless ``continues_prefill``,
    then it is, as :class:`FakeAnthropic` does.

    Tools: with ``tool_calls`` (``[{"name": ..., "arguments": '{"city": "Paris"}'}, ...]``) a
    request offering those functions in ``tools`` is answered with them in
    ``message.tool_calls``, arguments as JSON objects, ids ``call_00000001``, ... as current
    Ollama sends (``call_ids=False``: none, as older servers): whole, or streamed as one line
    before the ``done`` line, whose ``done_reason`` is ``"stop"``, as Ollama says. A request
    whose last message is a tool result gets ``reply``. With ``json_reply``, a request with a
    ``format`` ("json" or a schema) gets that object as its JSON text. ``tools`` and
    ``tool_calls`` its JSON decoder cannot read, and a ``format`` that is neither, are refused
    with Ollama's errors.
    """

    def __init__(
        self,
        *,
        models: Sequence[str] = ("llama3.2:latest",),
        reply: str = "Hello! How can I help you today?",
        pieces: Sequence[str] | None = None,
        continues_prefill: bool = False,
        tool_calls: Sequence[Mapping[str, str]] | None = None,
        call_ids: bool = True,
        json_reply: Any = None,
    ) -> None:
        super().__init__()
        self.models = tuple(models)
        self.reply = reply
        self.pieces = list(pieces) if pieces is not None else None
        self.continues_prefill = continues_prefill
        self.tool_calls = [dict(call) for call in tool_calls or ()]
        self.call_ids = call_ids
        self.json_reply = json_reply
        self._call_ids = itertools.count(1)

    def error_body(self, status: int, message: str) -> Any:
        """Ollama's error object, ``{"error": "..."}``, for an injected status."""
        return {"error": _ERROR_MESSAGES.get(status, message)}

    def handle(self, request: RecordedRequest, fault: Fault | None, responder: Responder) -> None:
        """Route to ``/api/tags`` or ``/api/chat``; anything else is Ollama's plain 404."""
        if request.method == "GET" and request.path == "/api/tags":
            responder.send_json(200, {"models": [_tag(name) for name in self.models]})
        elif request.method == "POST" and request.path == "/api/chat":
            self._chat(request, fault, responder)
        else:
            responder.send_text(404, "404 page not found", "text/plain")

    def installed(self, model: str) -> bool:
        """Whether ``model`` (with or without ``:latest``) is one of the installed models."""
        wanted = _with_tag(model)
        return any(_with_tag(name) == wanted for name in self.models)

    def _chat(self, request: RecordedRequest, fault: Fault | None, responder: Responder) -> None:
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
        options = payload.get("options") or {}
        limit = options.get("num_predict") if isinstance(options, dict) else None
        if isinstance(limit, int) and not isinstance(limit, bool) and 0 < limit < len(pieces):
            pieces, reason = pieces[:limit], "length"
        counters = _counters(payload["messages"], len(pieces))
        if payload.get("stream", True) is False:
            whole = _line(model, "".join(pieces))
            whole.update(done=True, done_reason=reason, **counters)
            self.send_whole(responder, fault, whole, b'{"model": "x", "message": {')
            return
        self._stream(responder, fault, model, pieces, reason, counters)

    def _problem(self, request: RecordedRequest) -> tuple[int, Any] | None:
        if not request.body.strip():
            return 400, {"error": "missing request body"}
        payload = request.json
        if not isinstance(payload, dict):
            first = request.body.strip()[:1].decode("utf-8", "replace")
            return 400, {"error": f"invalid character '{first}' looking for beginning of value"}
        if not payload.get("model"):
            return 400, {"error": "model is required"}
        if not isinstance(payload.get("messages"), list):
            return 400, {"error": "messages is required"}
        model = payload["model"]
        if not isinstance(model, str) or not self.installed(model):
            return 404, {"error": f'model "{model}" not found, try pulling it first'}
        return (
            tools.tools_problem(payload)
            or tools.messages_problem(payload["messages"])
            or tools.format_problem(payload)
        )

    def _pieces_for(self, payload: dict[str, Any]) -> list[str]:
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
        calls: list[dict[str, Any]],
    ) -> None:
        model = payload["model"]
        ids = [f"call_{next(self._call_ids):08d}" if self.call_ids else None for _ in calls]
        message = tools.message_with_calls(ids, calls)
        counters = _counters(payload["messages"], sum(len(json.dumps(c)) for c in calls) // 4)
        if payload.get("stream", True) is False:
            whole = _line(model, "")
            whole.update(message=message, done=True, done_reason="stop", **counters)
            self.send_whole(responder, fault, whole, b'{"model": "x", "message": {')
            return
        line = _line(model, "")
        line["message"] = message
        self._stream(responder, fault, model, [], "stop", counters, lines=[_encode(line)])

    def _stream(
        self,
        responder: Responder,
        fault: Fault | None,
        model: str,
        pieces: list[str],
        reason: str,
        counters: dict[str, int],
        *,
        lines: list[bytes] | None = None,
    ) -> None:
        responder.start_stream("application/x-ndjson")
        empty = _encode(_line(model, ""))
        events = StreamEvents(
            error=_encode({"error": MID_STREAM_ERROR}),
            malformed=b'{"model":"' + model.encode() + b'","created_at":\n',
            comment=empty,
            ping=empty,
            empty_delta=empty,
        )
        encoded = lines or [_encode(_line(model, piece)) for piece in pieces]
        if not self.stream_content(responder, fault, encoded, events):
            return
        final = _line(model, "")
        final.update(done=True, done_reason=reason, **counters)
        responder.write_chunk(_encode(final))
        responder.end_stream()


def _with_tag(name: str) -> str:
    # Ollama's tag defaults to "latest": "llama3.2" and "llama3.2:latest" are one model.
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _line(model: str, content: str) -> dict[str, Any]:
    return {
        "model": model,
        "created_at": _now(),
        "message": {"role": "assistant", "content": content},
        "done": False,
    }


def _encode(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def _counters(messages: list[Any], eval_count: int) -> dict[str, int]:
    prompt = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            prompt += len(content.split())
    prompt_ns = prompt * _PROMPT_NS_PER_TOKEN
    eval_ns = eval_count * _EVAL_NS_PER_TOKEN
    return {
        "total_duration": _LOAD_NS + prompt_ns + eval_ns,
        "load_duration": _LOAD_NS,
        "prompt_eval_count": prompt,
        "prompt_eval_duration": prompt_ns,
        "eval_count": eval_count,
        "eval_duration": eval_ns,
    }


def _tag(name: str) -> dict[str, Any]:
    family = re.split(r"[^a-z]", name.lower(), maxsplit=1)[0] or "llama"
    return {
        "name": name,
        "model": name,
        "modified_at": "2026-01-15T09:30:00.000000000Z",
        "size": 2_019_393_189,
        "digest": _DIGEST,
        "details": {
            "parent_model": "",
            "format": "gguf",
            "family": family,
            "families": [family],
            "parameter_size": "3.2B",
            "quantization_level": "Q4_K_M",
        },
    }
