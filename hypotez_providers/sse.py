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

from .limits import DEFAULT_MAX_LINE, LimitExceeded

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
    """Turns an event-stream byte stream into :class:`SSEEvent` objects, piece by piece.

    Linear in the stream's length however it is cut. A line longer than ``max_line`` bytes, or
    an event whose data is longer than ``max_line`` characters, raises :class:`LimitExceeded`
    as soon as it is seen to be, so memory stays bounded whatever the stream.
    """

    __slots__ = (
        "_counted",
        "_counted_lines",
        "_data",
        "_event",
        "_held",
        "_last_id",
        "_max_line",
        "_partial",
        "_partial_size",
        "_retry",
        "_size",
        "_skip_lf",
        "_started",
    )

    def __init__(self, *, max_line: int = DEFAULT_MAX_LINE) -> None:
        self._max_line = max_line
        # The unfinished last line, as the pieces it came in: joined once, when it ends.
        self._partial: list[bytes] = []
        self._partial_size = 0
        self._skip_lf = False
        self._started = False
        # The raw bytes of an unfinished event, not read yet (the fast path's buffer); only
        # ever held between events, and never more than max_line bytes.
        self._held = b""
        self._data: list[str] = []
        # The size of an event's data, counted at the end of a piece only when the event goes
        # on past it: _counted is the data list it is for, of which _counted_lines are in it.
        self._counted: list[str] | None = None
        self._counted_lines = 0
        self._size = 0
        self._event = ""
        self._last_id: str | None = None
        self._retry: int | None = None

    def feed(self, piece: bytes) -> list[SSEEvent]:
        """Take the next bytes of the stream; return the events they complete (often none)."""
        if self._held:
            piece = self._held + piece
            self._held = b""
        if self._skip_lf or b"\r" in piece:
            return self._feed_lines(piece)
        events: list[SSEEvent] = []
        if self._partial or self._data or self._event or not self._started:
            # Read line by line up to the first blank line: the events after it start afresh.
            # A leading LF after a whole line is a blank line.
            blank = piece[:1] == b"\n" and not self._partial
            first = 1 if blank else piece.find(b"\n\n") + 2
            if first < 2 and not blank:
                return self._feed_lines(piece)
            events = self._feed_lines(piece[:first])
            piece = piece[first:]
        cut = piece.rfind(b"\n\n") + 2
        if cut < 2:
            # No event ends in this piece: line by line, so that a trickle is read in linear time.
            return events + self._feed_lines(piece) if piece else events
        events += self._feed_events(piece[:cut])
        rest = piece[cut:]
        if len(rest) <= self._max_line:
            # An unfinished event is held as it came (once), and read with the rest of it.
            self._held = rest
        else:
            events += self._feed_lines(rest)
        return events

    def _feed_events(self, block: bytes) -> list[SSEEvent]:
        """The fast path: whole events with LF line ends, read from a state between events.

        One-line ``data: `` events (nearly all of them) are split off in bulk; any other event
        is read line by line, as :meth:`_feed_lines` would.
        """
        small = len(block) <= self._max_line
        last_id, retry = self._last_id, self._retry
        if small and block.startswith(b"data: "):
            # Every event one "data: " line, the common case, decoded and split at once. UTF-8
            # decoding is the same whole or per line, as no broken sequence spans an LF.
            datas = block[6:-2].decode("utf-8", "replace").split("\n\ndata: ")
            if block.count(b"\n") == 2 * len(datas):  # no other line in the block
                return [_new_event(SSEEvent, (data, "message", last_id, retry)) for data in datas]
        events: list[SSEEvent] = []
        append = events.append
        for raw in block[:-2].split(b"\n\n"):
            if raw[:6] == b"data: " and b"\n" not in raw and (small or len(raw) <= self._max_line):
                data = raw[6:].decode("utf-8", "replace")
                append(_new_event(SSEEvent, (data, "message", last_id, retry)))
            else:
                events += self._feed_lines(raw + b"\n\n")
                last_id, retry = self._last_id, self._retry
        return events

    def _feed_lines(self, piece: bytes) -> list[SSEEvent]:
        """Any bytes of the stream, read line by line (CR, LF or CRLF line ends)."""
        if (
            not self._partial
            and not self._skip_lf
            and self._started
            and piece.endswith(b"\n")
            and b"\r" not in piece
            and len(piece) <= self._max_line
        ):
            return self._feed_lf_lines(piece)
        if self._skip_lf and piece:
            self._skip_lf = False
            if piece[:1] == b"\n":
                piece = piece[1:]
        # Only the new piece is searched: what is buffered holds no line end.
        end = max(piece.rfind(b"\n"), piece.rfind(b"\r")) + 1
        if not end:
            if piece:
                self._partial.append(piece)
                self._partial_size += len(piece)
                if self._partial_size > self._max_line:
                    raise self._too_long("an SSE line")
            return []
        if self._partial:
            self._partial.append(piece[:end])
            buffer = b"".join(self._partial)
        else:
            buffer = piece[:end] if end < len(piece) else piece
        tail = piece[end:]
        self._partial = [tail] if tail else []
        self._partial_size = len(tail)
        lines = buffer.splitlines(keepends=True)
        if len(buffer) > self._max_line or len(tail) > self._max_line:
            self._check_lines(lines, tail)
        # A CR ending this piece may be the first half of a CRLF whose LF comes next; not so
        # when an unfinished line follows it, for then the next LF ends that line.
        self._skip_lf = not tail and buffer.endswith(b"\r")
        events: list[SSEEvent] = []
        for raw in lines:
            event = self._line(raw.rstrip(b"\r\n").decode("utf-8", "replace"))
            if event is not None:
                events.append(event)
        if self._data:
            self._count(self._data)
        return events

    def _feed_lf_lines(self, piece: bytes) -> list[SSEEvent]:
        """The common case, made fast: whole LF-ended lines, nothing buffered, no CR."""
        events: list[SSEEvent] = []
        data = self._data
        for raw in piece[:-1].split(b"\n"):
            if raw[:6] == b"data: ":
                data.append(raw[6:].decode("utf-8", "replace"))
            elif not raw:
                if data:
                    events.append(
                        SSEEvent(
                            data=self._joined(data) if len(data) > 1 else data[0],
                            event=self._event or "message",
                            id=self._last_id,
                            retry=self._retry,
                        )
                    )
                    data = self._data = []
                self._event = ""
            else:
                event = self._line(raw.decode("utf-8", "replace"))
                if event is not None:
                    events.append(event)
        if data:
            self._count(data)
        return events

    def _joined(self, data: list[str]) -> str:
        # One line is no longer than a line; several may add up to more.
        text = "\n".join(data)
        if len(text) > self._max_line:
            raise self._too_long("an SSE event's data")
        return text

    def _count(self, data: list[str]) -> None:
        """An event's data goes on into the next piece: count it, each line once."""
        if data is not self._counted:
            self._counted, self._counted_lines, self._size = data, 0, 0
        # _size counts characters, one LF per line included.
        self._size += sum(map(len, data[self._counted_lines :])) + len(data) - self._counted_lines
        self._counted_lines = len(data)
        if self._size > self._max_line + 1:
            raise self._too_long("an SSE event's data")

    def _check_lines(self, lines: list[bytes], tail: bytes) -> None:
        if len(tail) > self._max_line or any(
            len(raw.rstrip(b"\r\n")) > self._max_line for raw in lines
        ):
            raise self._too_long("an SSE line")

    def _too_long(self, what: str) -> LimitExceeded:
        return LimitExceeded(what, self._max_line, "max_line")

    @property
    def pending(self) -> bool:
        """Whether an unfinished line or event is buffered (the stream stopped mid-event)."""
        if self._held:
            held, self._held = self._held, b""
            self._feed_lines(held)  # it ends mid-event: it completes no event
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
            data=self._joined(self._data),
            event=self._event or "message",
            id=self._last_id,
            retry=self._retry,
        )
        self._data = []
        self._event = ""
        return event


# SSEEvent(data, "message", id, retry) without the named tuple's own __new__ frame.
_new_event = tuple.__new__


def iter_sse(pieces: Iterable[bytes], *, max_line: int = DEFAULT_MAX_LINE) -> Iterator[SSEEvent]:
    """Yield the events of an event stream given as an iterable of byte pieces.

    Raises :class:`LimitExceeded` past ``max_line`` (see :class:`SSEDecoder`).
    """
    decoder = SSEDecoder(max_line=max_line)
    for piece in pieces:
        yield from decoder.feed(piece)
