"""What a fake upstream can do wrong, and how the stream faults are written.

:class:`Fault` describes the faults of one request. The functions here apply the stream faults
through a :class:`~hypotez_providers.testing.server.Responder`, with the vendor's own bytes
given as :class:`StreamEvents`; a vendor's fake calls them, it never waits or loops itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from .server import Responder

#: The kinds of stall ``Fault.stall_with`` accepts.
STALL_KINDS = ("silence", "comment", "ping", "empty_delta", "close")


@dataclass(frozen=True)
class Fault:
    """What to do wrong on one request. Every field off means: answer normally.

    Any answer:

    - ``delay`` seconds of silence before anything is sent (a slow first byte);
    - ``drop_on_connect`` closes the connection without an answer;
    - ``status`` answers with that HTTP status (``headers`` and ``body`` as given, else the
      vendor's error body); ``html`` answers 502 with an nginx error page;
    - ``slow_headers``: the status line and headers go out one byte every that many seconds
      (the body then normally), so the headers take at least their length times it;
    - ``trickle``: the body goes out one byte every that many seconds: a whole answer's
      Content-Length body, or every byte of every HTTP chunk of a stream, framing included.

    ``drop_on_connect``, ``html`` and ``status`` replace the answer, so the faults below do
    not apply with them (the pacing of ``slow_headers`` and ``trickle`` does).

    Whole (non-stream) answers: ``malformed`` sends a truncated JSON body; ``endless`` sends
    chunked headers, the start of a JSON body, then one space every ``stall_interval``
    seconds for ever (until the client goes away or the fake stops). The stream faults
    below do not apply to them.

    Streams count content pieces (one event or line per piece; the vendor's preamble, such as
    OpenAI's role chunk or Anthropic's ``message_start``/``content_block_start``/``ping``, is
    not counted). A fault "after N" applies once N pieces were sent, before the next one (0:
    right after the preamble); counting past the last piece, it applies after the last one.
    At one point they apply in this order: ``malformed_at``, the stall, then the fault that
    ends the stream.

    - ``drop_after`` pieces, the connection breaks (no terminating chunk);
    - ``truncate_after`` pieces, the body ends cleanly without the vendor's end marker;
    - ``error_event_after`` pieces, the vendor's error event, then the body ends;
    - ``malformed`` sends one undecodable event right after the preamble, then goes on;
    - ``malformed_at`` pieces, ``malformed_count`` undecodable events in a row, then goes on;
    - ``stall_after`` pieces, no progress for ``stall_for`` seconds, then the stream goes on
      normally to its end. ``stall_with`` says what is sent meanwhile: ``"silence"`` nothing;
      ``"comment"`` an SSE comment ``: keep-alive`` (Ollama: a line with empty content and
      ``done: false``); ``"ping"`` Anthropic's ping event (OpenAI: the comment; Ollama: the
      empty line); ``"empty_delta"`` the vendor's content event with empty text; these three
      one at each multiple of ``stall_interval`` up to ``stall_for``. ``"close"`` is
      silent for ``stall_for`` seconds then breaks the connection, and the stream never ends;
    - ``endless``: after the preamble, a keep-alive (the ``"comment"`` above) every
      ``stall_interval`` seconds for ever; no content is ever sent.

    Every wait ends as soon as the fake stops or the client goes away; the answer is then
    abandoned and the connection closed.
    """

    delay: float = 0.0
    drop_on_connect: bool = False
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | str | None = None
    html: bool = False
    drop_after: int | None = None
    truncate_after: int | None = None
    error_event_after: int | None = None
    malformed: bool = False
    slow_headers: float = 0.0
    trickle: float = 0.0
    stall_after: int | None = None
    stall_with: str = "silence"
    stall_interval: float = 0.1
    stall_for: float = 30.0
    endless: bool = False
    malformed_at: int | None = None
    malformed_count: int = 1

    def __post_init__(self) -> None:
        if self.stall_with not in STALL_KINDS:
            raise ValueError(f"stall_with must be one of {STALL_KINDS}, not {self.stall_with!r}")
        if self.stall_interval <= 0:
            raise ValueError(f"stall_interval must be positive, not {self.stall_interval}")
        if self.malformed_count < 1:
            raise ValueError(f"malformed_count must be at least 1, not {self.malformed_count}")
        for name in ("delay", "slow_headers", "trickle", "stall_for"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, not {getattr(self, name)}")
        for name in (
            "drop_after",
            "truncate_after",
            "error_event_after",
            "stall_after",
            "malformed_at",
        ):
            count = getattr(self, name)
            if count is not None and count < 0:
                raise ValueError(f"{name} counts pieces and must not be negative, not {count}")


@dataclass(frozen=True)
class StreamEvents:
    """One stream's vendor-specific events that the stream faults write, each whole and encoded.

    ``error`` is the vendor's mid-stream error (``error_event_after``); ``malformed`` one
    undecodable event; ``comment`` a keep-alive carrying no data; ``ping`` the vendor's ping;
    ``empty_delta`` a content event with empty text.
    """

    error: bytes
    malformed: bytes
    comment: bytes
    ping: bytes
    empty_delta: bytes


def after_preamble(responder: Responder, fault: Fault | None, events: StreamEvents) -> None:
    """Apply the faults due right after a stream's preamble (``malformed``, ``endless``)."""
    if fault is None:
        return
    if fault.malformed:
        responder.write_chunk(events.malformed)
    if fault.endless:
        _keep_alive_forever(responder, events.comment, fault.stall_interval)


def before_piece(
    responder: Responder,
    fault: Fault | None,
    sent: int,
    events: StreamEvents,
    *,
    past_end: bool = False,
) -> bool:
    """Apply the stream faults due after ``sent`` content pieces; True when the stream ended.

    ``past_end``: every piece was sent, so a fault counting more pieces applies now.
    """
    if fault is None:
        return False
    if _due(fault.malformed_at, sent, past_end):
        for _ in range(fault.malformed_count):
            responder.write_chunk(events.malformed)
    if _due(fault.stall_after, sent, past_end) and _stall(responder, fault, events):
        return True
    return cut_stream(responder, fault, sent, events.error, past_end=past_end)


def cut_stream(
    responder: Responder,
    fault: Fault | None,
    sent: int,
    error_event: bytes,
    *,
    past_end: bool = False,
) -> bool:
    """Apply the fault that ends a stream after ``sent`` content pieces; True when it ended.

    ``error_event`` is the vendor's mid-stream error, written for ``error_event_after``.
    ``past_end``: every piece was sent, so a fault counting more pieces applies now.
    """
    if fault is None:
        return False
    if _due(fault.drop_after, sent, past_end):
        responder.drop()
    elif _due(fault.truncate_after, sent, past_end):
        responder.end_stream()
    elif _due(fault.error_event_after, sent, past_end):
        responder.write_chunk(error_event)
        responder.end_stream()
    else:
        return False
    return True


def send_endless(
    responder: Responder,
    opening: bytes,
    interval: float,
    headers: dict[str, str] | None = None,
) -> NoReturn:
    """Start a whole JSON answer with ``opening`` and never finish it: a space every ``interval``.

    Returns only by raising, when the client goes away or the fake stops.
    """
    responder.start_stream("application/json", headers=headers)
    responder.write_chunk(opening)
    _keep_alive_forever(responder, b" ", interval)


def _due(after: int | None, sent: int, past_end: bool) -> bool:
    return after is not None and (after == sent or (past_end and after > sent))


def _stall(responder: Responder, fault: Fault, events: StreamEvents) -> bool:
    """Make no progress for ``fault.stall_for`` seconds; True when the stall ended the stream."""
    kind = fault.stall_with
    if kind in ("silence", "close"):
        responder.pause(fault.stall_for)
        if kind == "close":
            responder.drop()
            return True
        return False
    beat = {"comment": events.comment, "ping": events.ping, "empty_delta": events.empty_delta}
    started = time.monotonic()
    # A fixed schedule, so slow writes (trickle) do not stretch the stall.
    beats = int(fault.stall_for / fault.stall_interval + 1e-9)
    for number in range(1, beats + 1):
        responder.pause(started + number * fault.stall_interval - time.monotonic())
        responder.write_chunk(beat[kind])
    responder.pause(started + fault.stall_for - time.monotonic())
    return False


def _keep_alive_forever(responder: Responder, beat: bytes, interval: float) -> NoReturn:
    while True:
        responder.pause(interval)
        responder.write_chunk(beat)
