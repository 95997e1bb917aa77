"""The two protocols the gateway speaks, behind one shape the application calls.

A :class:`Dialect` turns a request body into a :class:`~.call.GatewayCall`, and answers, stream
events and failures into that protocol's bytes; :data:`OPENAI` and :data:`ANTHROPIC` are the
two there are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..results import Chunk, Completion
from . import anthropic_wire, openai_wire
from .call import GatewayCall
from .failures import Failure


class Encoder(Protocol):
    """Turns one routed stream into a protocol's server-sent events."""

    def start(self) -> bytes:
        """The events before the first chunk."""

    def feed(self, chunk: Chunk) -> bytes:
        """The events for one chunk (may be empty)."""

    def finish(self) -> bytes:
        """The events that end a complete answer."""

    def error(self, failure: Failure) -> bytes:
        """The in-band error event that ends a broken answer."""


@dataclass(frozen=True, slots=True)
class Dialect:
    """One protocol: its name, and how to read requests and write answers in it."""

    name: str
    parse: Callable[[object], GatewayCall]
    whole: Callable[[Completion, GatewayCall], dict[str, Any]]
    streamer: Callable[[GatewayCall], Encoder]
    error: Callable[[Failure], dict[str, Any]]


def _openai_whole(completion: Completion, call: GatewayCall) -> dict[str, Any]:
    return openai_wire.completion_body(completion, completion_id=openai_wire.new_id())


def _openai_streamer(call: GatewayCall) -> Encoder:
    return openai_wire.ChunkStream(
        completion_id=openai_wire.new_id(), model=call.model, include_usage=call.include_usage
    )


def _anthropic_whole(completion: Completion, call: GatewayCall) -> dict[str, Any]:
    return anthropic_wire.message_body(
        completion, model=call.model, message_id=anthropic_wire.new_message_id()
    )


def _anthropic_streamer(call: GatewayCall) -> Encoder:
    return anthropic_wire.MessageStream(
        model=call.model, message_id=anthropic_wire.new_message_id()
    )


OPENAI = Dialect(
    "openai", openai_wire.parse_request, _openai_whole, _openai_streamer, openai_wire.error_body
)
ANTHROPIC = Dialect(
    "anthropic",
    anthropic_wire.parse_request,
    _anthropic_whole,
    _anthropic_streamer,
    anthropic_wire.error_body,
)
