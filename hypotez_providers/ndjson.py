"""An incremental splitter for newline-delimited JSON streams (one JSON value per line)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any


class BadLine:
    """Stands in a decoded stream for a line that is not JSON; ``line`` holds its raw bytes.

    ``json.loads`` never returns one, so ``type(value) is BadLine`` tells it from a value.
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
    place, so a caller decides whether one bad line spoils the stream.
    """

    __slots__ = ("_partial",)

    def __init__(self) -> None:
        self._partial = b""

    def feed(self, piece: bytes) -> list[Any]:
        """Take the next bytes; return the values (or ``BadLine``) of the lines they complete."""
        buffer = self._partial + piece if self._partial else piece
        *lines, self._partial = buffer.split(b"\n")
        return [_parse(line) for line in lines if line.strip()]

    def close(self) -> list[Any]:
        """End of stream: parse a last line that had no newline, if there is one."""
        rest, self._partial = self._partial, b""
        return [_parse(rest)] if rest.strip() else []


def iter_ndjson(pieces: Iterable[bytes]) -> Iterator[Any]:
    """Yield the values (or ``BadLine``) of an NDJSON stream given as an iterable of byte pieces.

    The last line needs no newline.
    """
    decoder = NDJSONDecoder()
    for piece in pieces:
        yield from decoder.feed(piece)
    yield from decoder.close()


def _parse(line: bytes) -> Any:
    try:
        return json.loads(line)
    except ValueError:  # invalid UTF-8 too: UnicodeDecodeError is a ValueError
        return BadLine(line)
