"""What went wrong, as an HTTP status and a kind every protocol can render in its own words.

The router raises typed errors; a client of the gateway expects a status code and an error
body in its vendor's shape. :func:`failure_for` makes the first into a :class:`Failure`, which
:mod:`.openai_wire` and :mod:`.anthropic_wire` render. The status says whose fault it was:
4xx the caller's (bad input, wrong key, unknown model, every provider rate limited), 5xx the
providers' (502 all failed, 503 none could be tried, 504 all timed out).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..errors import (
    AllProvidersFailed,
    BadRequest,
    InvalidInput,
    ProviderError,
    StreamInterrupted,
    UnknownModel,
    UnknownProvider,
    redact,
)

Kind = Literal[
    "invalid_request",
    "authentication",
    "permission",
    "not_found",
    "too_large",
    "rate_limit",
    "upstream",
    "overloaded",
    "timeout",
    "internal",
]


@dataclass(frozen=True, slots=True)
class Failure:
    """An error to send to a client: status, kind, message, and what it may need to act on it.

    ``param`` names the request field at fault; ``retry_after`` (seconds) becomes a
    ``Retry-After`` header.
    """

    status: int
    kind: Kind
    message: str
    param: str | None = None
    retry_after: float | None = None


class Refused(Exception):
    """Ends a gateway request early with ``failure``, rendered in the protocol's error shape."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def failure_for(error: BaseException) -> Failure:
    """The failure to report for an exception raised while serving a call."""
    if isinstance(error, (UnknownModel, UnknownProvider)):
        return Failure(404, "not_found", str(error), getattr(error, "field", None))
    if isinstance(error, InvalidInput):
        return Failure(400, "invalid_request", str(error), error.field)
    if isinstance(error, AllProvidersFailed):
        return _all_failed(error)
    if isinstance(error, BadRequest):
        return Failure(400, "invalid_request", str(error))
    if isinstance(error, StreamInterrupted):
        return Failure(502, "upstream", str(error))
    if isinstance(error, ProviderError):
        return Failure(502, "upstream", str(error), retry_after=error.retry_after)
    return Failure(500, "internal", f"internal error ({type(error).__name__}); see the gateway log")


def _all_failed(error: AllProvidersFailed) -> Failure:
    """The status for a call nothing answered: 429, 503, 504 or 502.

    429 when every provider tried answered 429 or was skipped at its rate limit (Retry-After:
    the shortest wait); 503 when none could be tried; 504 when all timed out; else 502.
    """
    message = redact(str(error))
    # A provider skipped at its rpm/tpm is as good as one that answered 429.
    tried = [
        attempt
        for attempt in error.attempts
        if attempt.outcome == "failed" or attempt.error == "RateLimited"
    ]
    if not tried:
        return Failure(503, "overloaded", message)  # every circuit open, no key, disabled
    kinds = {attempt.error for attempt in tried}
    if kinds == {"RateLimited"}:
        waits = [attempt.retry_after for attempt in tried if attempt.retry_after is not None]
        return Failure(429, "rate_limit", message, retry_after=min(waits) if waits else None)
    if kinds == {"ProviderTimeout"}:
        return Failure(504, "timeout", message)
    return Failure(502, "upstream", message)
