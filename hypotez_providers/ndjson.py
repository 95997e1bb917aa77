"""An incremental splitter for newline-delimited JSON streams (one JSON value per line)."""

from __future__ import annotations

import json
from typing import Any


class NDJSONDecoder:
    """Turns byte pieces of an NDJSON stream into parsed values, line by line.

    Blank lines are skipped. A line that is not JSON raises :class:`ValueError` carrying the line.
    """

    __slots__ = ("_partial",)

    def __init__(self) -> None:
        self._partial = b""

    def feed(self, piece: bytes) -> list[Any]:
        """Take the next bytes; return the values of the lines they complete."""
        buffer = self._partial + piece if self._partial else piece
        *lines, self._partial = buffer.split(b"\n")
        return [_parse(line) for line in lines if line.strip()]

    def close(self) -> list[Any]:
        """End of stream: parse a last line that had no newline, if there is one."""
        rest, self._partial = self._partial, b""
        return [_parse(rest)] if rest.strip() else []


def _parse(line: bytes) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        raise ValueError(f"not a JSON line: {line[:200]!r}") from None
