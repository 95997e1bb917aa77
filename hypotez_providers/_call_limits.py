"""A routed call's side of the providers' ``rpm``/``tpm`` limits (internal).

Slots are taken before an attempt, a 429 holds the provider back for every caller, and an
answer's tokens are charged once it is known (a stream's when it ends or is closed). Only
providers with limits cost anything: for the others every method returns at once.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

from .rate_limits import DEFAULT_PENALTY, Held, RateLimiter, RateLimits
from .results import Chunk, Usage
from .selection import Candidate


class CallLimits:
    """One call's use of the shared :class:`RateLimiter` (``None``: no limiter, no limits)."""

    __slots__ = ("limiter",)

    def __init__(self, limiter: RateLimiter | None) -> None:
        self.limiter = limiter

    def take_slot(self, candidate: Candidate) -> Held | None:
        """One request slot at the provider's ``rpm``/``tpm`` (``None``: taken), else why not.

        Callers ask only for providers with limits, so the others cost nothing.
        """
        if self.limiter is None:
            return None
        settings = candidate.provider.settings
        limits = RateLimits(settings.rpm, settings.tpm)
        return self.limiter.acquire(candidate.provider.name, limits)

    def penalise(self, candidate: Candidate, retry_after: float | None) -> None:
        """A 429 from a provider with limits holds it back (Retry-After, or 1 s) for everyone."""
        settings = candidate.provider.settings
        if (settings.rpm or settings.tpm) and self.limiter is not None:
            self.limiter.penalise(candidate.provider.name, retry_after or DEFAULT_PENALTY)

    def charge(self, candidate: Candidate, usage: Usage | None) -> None:
        """Log an answer's tokens against its provider's ``tpm``, if it has one."""
        tpm = candidate.provider.settings.tpm
        if tpm is None or usage is None or self.limiter is None:
            return
        tokens = usage.total_tokens or usage.prompt_tokens + usage.completion_tokens
        limits = RateLimits(candidate.provider.settings.rpm, tpm)
        self.limiter.add_tokens(candidate.provider.name, limits, tokens)

    def metered(
        self, candidate: Candidate, first: Chunk | None, chunks: Iterator[Chunk]
    ) -> Iterator[Chunk]:
        """``chunks`` as they are, charging the last usage seen when the stream ends or closes.

        Without a ``tpm`` at the provider, ``chunks`` itself: nothing is added per chunk.
        """
        if candidate.provider.settings.tpm is None or self.limiter is None:
            return chunks
        return self._metering(candidate, first.usage if first else None, chunks)

    def _metering(
        self, candidate: Candidate, usage: Usage | None, chunks: Iterator[Chunk]
    ) -> Generator[Chunk, None, None]:
        try:
            for chunk in chunks:
                if chunk.usage is not None:
                    usage = chunk.usage
                yield chunk
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
            self.charge(candidate, usage)
