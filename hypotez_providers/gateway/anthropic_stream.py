"""Our chunk stream as Anthropic's Messages server-sent events, ready to write.

The protocol: ``message_start`` (the message, no content yet); per content block a
``content_block_start``, ``content_block_delta`` events (``text_delta``, or
``input_json_delta`` for a tool call's arguments) and a ``content_block_stop``; then
``message_delta`` (stop reason, output tokens) and ``message_stop``. A stream that breaks ends
with an ``error`` event instead, never a clean stop. ``ping`` events keep a quiet connection
open. This is the gateway's hot path: plain dictionaries and one ``json`` encode per event.
"""

from __future__ import annotations

import json
from typing import Any

from ..results import Chunk, Usage
from ..tools import ToolCallDelta
from .anthropic_response import error_body, stop_reason
from .failures import Failure

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_TEXT = -1  # the open block is text (tool blocks are keyed by the call's index, >= 0)
_TEXT_DELTA = (
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,'
    b'"delta":{"type":"text_delta","text":'
)


def event(name: str, data: dict[str, Any]) -> bytes:
    """One server-sent event: ``event: NAME``, ``data: JSON`` and the blank line that ends it."""
    return f"event: {name}\ndata: {_encode(data)}\n\n".encode()


class MessageStream:
    """Encodes one answer's chunks as Anthropic's stream events; one object per response.

    Call :meth:`start` first, :meth:`feed` for every chunk, then :meth:`finish` (a complete
    answer) or :meth:`error` (a broken one). Text opens a text block; each tool call (by its
    index in ``Chunk.tool_call_deltas``) opens a ``tool_use`` block whose arguments stream as
    ``input_json_delta``; a block closes when another opens or the answer ends. Assembled
    ``Chunk.tool_calls`` of a stream that never sent deltas are sent whole. Chunks with nothing
    to say (rescue markers, keep-alives) give no bytes. A rescue ``"restart"`` cannot take back
    text already sent in this protocol: serve Anthropic streams with rescue ``None`` or
    ``"continue"``.
    """

    __slots__ = (
        "_blocks",
        "_done",
        "_message_id",
        "_model",
        "_next",
        "_open",
        "_reason",
        "_text_head",
        "_usage",
    )

    def __init__(self, *, model: str, message_id: str) -> None:
        self._model = model
        self._message_id = message_id
        self._next = 0  # the index the next content block gets
        self._open: int | None = None  # what the open block carries: _TEXT or a call's index
        self._blocks: dict[int, int] = {}  # a tool call's index -> its content block's index
        self._reason: str | None = None
        self._usage: Usage | None = None
        self._done = False
        self._text_head = b""  # the frame of the open text block's deltas

    def start(self) -> bytes:
        """``message_start``: the message with empty content and no stop reason yet."""
        message: dict[str, Any] = {
            "id": self._message_id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return event("message_start", {"type": "message_start", "message": message})

    def feed(self, chunk: Chunk) -> bytes:
        """The events for one chunk: block starts, deltas and stops (empty bytes if none)."""
        if self._done:
            return b""
        if chunk.finish_reason:
            self._reason = chunk.finish_reason
        if chunk.usage is not None:
            self._usage = chunk.usage
        out = b""
        if chunk.text:
            out = self._text(chunk.text)
        for delta in chunk.tool_call_deltas:
            out += self._tool_delta(delta)
        if chunk.tool_calls and not self._blocks:
            for index, call in enumerate(chunk.tool_calls):
                whole = ToolCallDelta(index=index, id=call.id, name=call.name, arguments="")
                out += self._tool_delta(whole, call.arguments)
        return out

    def finish(self) -> bytes:
        """Close the open block, then ``message_delta`` (stop reason, usage), ``message_stop``."""
        if self._done:
            return b""
        self._done = True
        out = self._close()
        usage: dict[str, int] = {"output_tokens": 0}
        if self._usage is not None:
            usage = {
                "input_tokens": self._usage.prompt_tokens,
                "output_tokens": self._usage.completion_tokens,
            }
        reason = stop_reason(self._reason, called_tools=bool(self._blocks))
        delta = {"stop_reason": reason, "stop_sequence": None}
        out += event("message_delta", {"type": "message_delta", "delta": delta, "usage": usage})
        return out + event("message_stop", {"type": "message_stop"})

    def error(self, failure: Failure) -> bytes:
        """The in-band ``error`` event that ends a broken stream (nothing may follow it)."""
        self._done = True
        return event("error", error_body(failure))

    def ping(self) -> bytes:
        """A ``ping`` event, to keep an idle connection (and its proxies) from timing out."""
        return event("ping", {"type": "ping"})

    def _text(self, text: str) -> bytes:
        out = b""
        if self._open != _TEXT:
            out = self._close() + self._start({"type": "text", "text": ""})
            self._open = _TEXT
            self._text_head = _TEXT_DELTA % (self._next - 1)
        # The most frequent event: only the text is encoded, around a prepared frame.
        return out + self._text_head + _encode(text).encode() + b"}}\n\n"

    def _tool_delta(self, delta: ToolCallDelta, arguments: str = "") -> bytes:
        out = b""
        block = self._blocks.get(delta.index)
        if block is None:
            out = self._close()
            block = self._blocks[delta.index] = self._next
            call_id = delta.id or f"call_{delta.index}"
            out += self._start(
                {"type": "tool_use", "id": call_id, "name": delta.name or "", "input": {}}
            )
            self._open = delta.index
        # A piece of a call whose block has closed (calls interleaved) still goes to its index.
        pieces = delta.arguments + arguments
        if pieces:
            out += self._delta(block, {"type": "input_json_delta", "partial_json": pieces})
        return out

    def _start(self, block: dict[str, Any]) -> bytes:
        index = self._next
        self._next += 1
        data = {"type": "content_block_start", "index": index, "content_block": block}
        return event("content_block_start", data)

    def _delta(self, index: int, delta: dict[str, Any]) -> bytes:
        data = {"type": "content_block_delta", "index": index, "delta": delta}
        return event("content_block_delta", data)

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return event("content_block_stop", {"type": "content_block_stop", "index": self._next - 1})
