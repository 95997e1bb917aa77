"""How much of an answer is read before it is refused: bounded memory, whatever a server sends.

A line of an event stream or NDJSON stream, one event's data, and a whole (non-stream) answer
each have a maximum size, counted after content decoding, so a compressed body cannot expand
past it. Past a limit the decoders raise :class:`LimitExceeded`; :class:`HttpTransport` turns it
into :class:`~hypotez_providers.errors.MalformedResponse` naming the provider and the limit.
"""

from __future__ import annotations

from .errors import HypotezError

#: Bytes: the longest line (or one event's data) a stream decoder holds; 4 MiB.
DEFAULT_MAX_LINE = 4 * 1024 * 1024
#: Bytes: the largest whole (non-stream) answer read, after content decoding; 32 MiB.
DEFAULT_MAX_BODY = 32 * 1024 * 1024


class LimitExceeded(HypotezError, ValueError):
    """A line, an event or a body is larger than its limit; the answer cannot be used.

    ``what`` names the thing (``"an SSE line"``), ``limit`` the limit in bytes and ``setting``
    the name of the transport attribute that sets it (``"max_line"``, ``"max_body"``).
    """

    def __init__(self, what: str, limit: int, setting: str) -> None:
        self.what = what
        self.limit = limit
        self.setting = setting
        super().__init__(f"{what} is over the {limit:,}-byte limit ({setting})")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.what, self.limit, self.setting))
