"""An incremental splitter for newline-delimited JSON streams (one JSON value per line)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ._json import loads
from .limits import DEFAULT_MAX_LINE, LimitExceeded


class BadLine:
    """Stands in a decoded stream for a line that is not JSON; ``line`` holds its raw bytes.

    A JSON decoder never returns one, so ``type(value) is BadLine`` tells it from a value.
    """

    __slots__ = ("line",)

    def __init__(self, line: bytes) -> None:
        self.line = line

    def __repr__(self) -> str:
        return f"BadLine({self.line[:200]!r})"

    def __str__(self) -> str:
        return f"not a JSON line: {self.line[:200]!r}"


class NDJSONDecoder:
    """Turns byte pieces of an NDJSON stream into parsed values, line by line.

    Blank lines are skipped. A line that is not JSON comes out as a :class:`BadLine`, in its
    place, so a caller decides whether one bad line spoils the stream. Linear in the stream's
    length however it is cut; a line longer than ``max_line`` bytes raises
    :class:`LimitExceeded` as soon as it is seen to be, so memory stays bounded.
    """

    __slots__ = ("_max_line", "_partial", "_partial_size")

    def __init__(self, *, max_line: int = DEFAULT_MAX_LINE) -> None:
        self._max_line = max_line
        # The unfinished last line, as the pieces it came in: joined once, when it ends.
        self._partial: list[bytes] = []
        self._partial_size = 0

    def feed(self, piece: bytes) -> list[Any]:
        """Take the next bytes; return the values (or ``BadLine``) of the lines they complete."""
        lines = piece.split(b"\n")
        if len(lines) == 1:
            if piece:
                self._partial.append(piece)
                self._partial_size += len(piece)
                if self._partial_size > self._max_line:
                    raise self._too_long()
            return []
        # At least the longest line: checked one by one only past it.
        size = self._partial_size + len(piece)
        if self._partial:
            self._partial.append(lines[0])
            lines[0] = b"".join(self._partial)
        tail = lines.pop()
        self._partial = [tail] if tail else []
        self._partial_size = len(tail)
        if size > self._max_line and max(len(tail), *map(len, lines)) > self._max_line:
            raise self._too_long()
        return [_parse(line) for line in lines if line.strip()]

    def close(self) -> list[Any]:
        """End of stream: parse a last line that had no newline, if there is one."""
        rest = b"".join(self._partial)
        self._partial, self._partial_size = [], 0
        return [_parse(rest)] if rest.strip() else []

    def _too_long(self) -> LimitExceeded:
        return LimitExceeded("an NDJSON line", self._max_line, "max_line")


def iter_ndjson(pieces: Iterable[bytes], *, max_line: int = DEFAULT_MAX_LINE) -> Iterator[Any]:
    """Yield the values (or ``BadLine``) of an NDJSON stream given as an iterable of byte pieces.

    The last line needs no newline. Raises :class:`LimitExceeded` past ``max_line``.
    """
    decoder = NDJSONDecoder(max_line=max_line)
    for piece in pieces:
        yield from decoder.feed(piece)
    yield from decoder.close()


def _parse(line: bytes) -> Any:
    try:
        return loads(line)
    except ValueError:  # invalid UTF-8 too: UnicodeDecodeError is a ValueError
        return BadLine(line)
