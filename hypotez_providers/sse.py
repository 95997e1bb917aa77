"""An incremental parser for server-sent events, following the WHATWG event-stream rules.

Feed it bytes as they arrive, in pieces of any size; it returns the events completed so far.
Lines may end in CR, LF or CRLF (a CRLF split between two pieces is one line end); lines
starting with ``:`` are comments; ``data`` lines accumulate, joined by LF; one space after the
colon is dropped; an event is dispatched on a blank line; an unfinished event at the end of the
stream is discarded, as the standard says.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple

_BOM = "\ufeff"


class SSEEvent(NamedTuple):
    """One dispatched event: its type (``"message"`` unless the stream named one) and data.

    A named tuple: one is built per event, on the streaming hot path.
    """

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Turns an event-stream byte stream into :class:`SSEEvent` objects, piece by piece."""

    __slots__ = ("_data", "_event", "_last_id", "_partial", "_retry", "_skip_lf", "_started")

    def __init__(self) -> None:
        self._partial = b""
        self._skip_lf = False
        self._started = False
        self._data: list[str] = []
        self._event = ""
        self._last_id: str | None = None
        self._retry: int | None = None

    def feed(self, piece: bytes) -> list[SSEEvent]:
        """Take the next bytes of the stream; return the events they complete (often none)."""
        if (
            not self._partial
            and not self._skip_lf
            and self._started
            and piece.endswith(b"\n")
            and b"\r" not in piece
        ):
            return self._feed_lf_lines(piece)
        if self._skip_lf and piece:
            self._skip_lf = False
            if piece[:1] == b"\n":
                piece = piece[1:]
        buffer = self._partial + piece if self._partial else piece
        lines = buffer.splitlines(keepends=True)
        if lines and not lines[-1].endswith((b"\n", b"\r")):
            self._partial = lines.pop()
        else:
            self._partial = b""
        if not lines:
            return []
        # A CR ending this piece may be the first half of a CRLF whose LF comes next; not so
        # when an unfinished line follows it, for then the next LF ends that line.
        self._skip_lf = not self._partial and lines[-1].endswith(b"\r")
        events: list[SSEEvent] = []
        for raw in lines:
            event = self._line(raw.rstrip(b"\r\n").decode("utf-8", "replace"))
            if event is not None:
                events.append(event)
        return events

    def _feed_lf_lines(self, piece: bytes) -> list[SSEEvent]:
        """The common case, made fast: whole LF-ended lines, nothing buffered, no CR."""
        events: list[SSEEvent] = []
        for raw in piece[:-1].split(b"\n"):
            if raw[:6] == b"data: ":
                self._data.append(raw[6:].decode("utf-8", "replace"))
            elif not raw:
                if self._data:
                    events.append(
                        SSEEvent(
                            data="\n".join(self._data) if len(self._data) > 1 else self._data[0],
                            event=self._event or "message",
                            id=self._last_id,
                            retry=self._retry,
                        )
                    )
                    self._data = []
                self._event = ""
            else:
                event = self._line(raw.decode("utf-8", "replace"))
                if event is not None:
                    events.append(event)
        return events

    @property
    def pending(self) -> bool:
        """Whether an unfinished line or event is buffered (the stream stopped mid-event)."""
        return bool(self._partial or self._data or self._event)

    def _line(self, line: str) -> SSEEvent | None:
        if not self._started:
            self._started = True
            if line.startswith(_BOM):
                line = line[1:]
        if not line:
            return self._dispatch()
        if line[0] == ":":
            return None
        field, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id":
            if "\0" not in value:
                self._last_id = value
        elif field == "retry" and value.isascii() and value.isdigit() and len(value) < 16:
            # Python refuses int() on thousands of digits; no sane delay needs more than 15.
            self._retry = int(value)
        return None

    def _dispatch(self) -> SSEEvent | None:
        if not self._data:
            self._event = ""
            return None
        event = SSEEvent(
            data="\n".join(self._data),
            event=self._event or "message",
            id=self._last_id,
            retry=self._retry,
        )
        self._data = []
        self._event = ""
        return event


def iter_sse(pieces: Iterable[bytes]) -> Iterator[SSEEvent]:
    """Yield the events of an event stream given as an iterable of byte pieces."""
    decoder = SSEDecoder()
    for piece in pieces:
        yield from decoder.feed(piece)
