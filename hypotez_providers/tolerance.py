"""Tolerant streams: an undecodable event is skipped and counted, not fatal at once.

A codec that cannot decode one event of an otherwise good stream calls :func:`skip_malformed`
and goes on with the next one. The stream fails with :class:`MalformedResponse` only when more
than :data:`MAX_MALFORMED_IN_A_ROW` bad events come in a row, or when it ends without the
vendor's end marker (the codec's own truncation check, whose error :func:`truncated_stream`
builds). The count lands on the attempt (``Attempt.malformed_events``), so a caller can tell
a clean answer from a patched-up one.
"""

from __future__ import annotations

from .errors import MalformedResponse
from .redaction import logger_for, redact_then_cut

#: Bad events in a row after which a stream is given up on.
MAX_MALFORMED_IN_A_ROW = 3

logger = logger_for("hypotez_providers.streams")


class StreamStats:
    """Counters of one attempt's stream, filled in by the codec that reads it."""

    __slots__ = ("malformed_events",)

    def __init__(self) -> None:
        #: Undecodable events skipped so far.
        self.malformed_events = 0

    def __repr__(self) -> str:
        return f"StreamStats(malformed_events={self.malformed_events})"


def skip_malformed(provider: str, stats: StreamStats | None, in_a_row: int, what: str) -> int:
    """Count one undecodable event (``what`` describes it) and return the new run length.

    ``in_a_row`` is how many bad events came just before this one (0 after a good event).
    Raises :class:`MalformedResponse` naming the provider when the run passes
    :data:`MAX_MALFORMED_IN_A_ROW`. The event is logged at DEBUG, cut to 200 characters.
    """
    in_a_row += 1
    what = redact_then_cut(what, 200)  # redacted before it is cut: a cut key would show
    if stats is not None:
        stats.malformed_events += 1
    if in_a_row > MAX_MALFORMED_IN_A_ROW:
        raise MalformedResponse(
            provider, f"{in_a_row} undecodable stream events in a row, the last: {what}"
        )
    logger.debug("%s: skipped an undecodable stream event: %s", provider, what)
    return in_a_row


def truncated_stream(provider: str, ended: str, skipped: int) -> MalformedResponse:
    """The error for a stream that ``ended`` (e.g. "before [DONE]") without its end marker.

    ``skipped`` is how many undecodable events this stream skipped; the message says so when
    there were any, since a skipped event may have been the end marker itself.
    """
    message = f"the stream ended {ended}: the answer is truncated"
    if skipped:
        events = "event was" if skipped == 1 else "events were"
        message += f" ({skipped} undecodable {events} skipped)"
    return MalformedResponse(provider, message)
