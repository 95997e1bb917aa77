"""Rate limits per provider: requests and tokens per minute, held over a sliding window.

A provider (or ``[endpoints.NAME]``) with ``rpm`` or ``tpm`` in its settings is asked through a
:class:`RateLimiter` before each call. The window is a **sliding log of 60 seconds**: every
request admitted is logged with its time, and a request is admitted while fewer than ``rpm``
were admitted in the last 60 s (exact, not an estimate from fixed windows, so ``rpm = 6`` means
at most 6 requests in any 60 s). Tokens are logged the same way, after the call, from the
answer's usage (its ``total_tokens``: the cost of a call is not known before it); a request is
admitted while the tokens logged in the last 60 s are fewer than ``tpm``. A 429 from the
provider holds it back for its Retry-After (:meth:`RateLimiter.penalise`).

A refused request takes nothing: the limiter answers with a :class:`Held` saying which limit
and how long until it frees, and the router skips that provider as it skips an open circuit.
:class:`MemoryRateLimiter` counts in this process;
:class:`~hypotez_providers.state.redis_limits.RedisRateLimiter` counts on Redis for a fleet.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

#: Seconds the window looks back over.
WINDOW = 60.0
#: Seconds a provider is held back after a 429 that gave no Retry-After.
DEFAULT_PENALTY = 1.0


@dataclass(frozen=True, slots=True)
class RateLimits:
    """A provider's limits: requests (``rpm``) and tokens (``tpm``) per minute; ``None``: none."""

    rpm: int | None = None
    tpm: int | None = None


def limits_of(rpm: int | None, tpm: int | None) -> RateLimits | None:
    """The limits from two settings, or ``None`` when neither is set (no limiter is asked)."""
    if rpm is None and tpm is None:
        return None
    return RateLimits(rpm, tpm)


@dataclass(frozen=True, slots=True)
class Held:
    """Why a request was not admitted, and in how many seconds it may be.

    ``limit`` is ``"rpm"``, ``"tpm"`` or ``"429"`` (the provider asked to wait); ``value`` is
    the limit reached (the requests or tokens per minute; 0 for a 429).
    """

    limit: Literal["rpm", "tpm", "429"]
    value: int
    wait: float

    @property
    def reason(self) -> str:
        """The skip reason shown in the attempts: ``rate limit: rpm 6 reached; ...``."""
        if self.limit == "429":
            return f"rate limit: the provider answered 429; waiting {self.wait:.1f}s more"
        return f"rate limit: {self.limit} {self.value} reached; a slot frees in {self.wait:.1f}s"


class RateLimiter(Protocol):
    """Counts requests and tokens per provider against its :class:`RateLimits` (thread-safe)."""

    def acquire(self, provider: str, limits: RateLimits) -> Held | None:
        """Take one request slot (``None``), or say why not and for how long (nothing taken).

        Refused while the provider is penalised, while its tokens in the window reach
        ``tpm``, or while its requests in the window reach ``rpm``.
        """
        ...

    def add_tokens(self, provider: str, limits: RateLimits, tokens: int) -> None:
        """Log ``tokens`` used by an answer now (kept only if ``limits.tpm`` is set)."""
        ...

    def penalise(self, provider: str, seconds: float) -> None:
        """The provider answered 429: admit no request for ``seconds`` (the longest ask wins)."""
        ...

    def usage(self, provider: str, limits: RateLimits) -> float:
        """The fraction of the tighter limit used in the window: 0.0 idle, 1.0 (or more) full."""
        ...


@dataclass(slots=True)
class _Log:
    """One provider's window: admitted request times, (time, tokens) entries, the penalty."""

    requests: deque[float] = field(default_factory=deque)
    tokens: deque[tuple[float, int]] = field(default_factory=deque)
    token_total: int = 0
    held_until: float = 0.0

    def trim(self, now: float) -> None:
        cut = now - WINDOW
        requests, tokens = self.requests, self.tokens
        while requests and requests[0] <= cut:
            requests.popleft()
        while tokens and tokens[0][0] <= cut:
            self.token_total -= tokens.popleft()[1]

    def held(self, now: float, limits: RateLimits) -> Held | None:
        """Why a request cannot go now (``trim`` first), or ``None``."""
        if self.held_until > now:
            return Held("429", 0, self.held_until - now)
        tpm = limits.tpm
        if tpm is not None and self.token_total >= tpm:
            return Held("tpm", tpm, _token_wait(self.tokens, self.token_total, tpm, now))
        rpm = limits.rpm
        if rpm is not None and len(self.requests) >= rpm:
            # The slot frees when the request that put the window at its limit leaves it.
            frees = self.requests[len(self.requests) - rpm] + WINDOW
            return Held("rpm", rpm, max(frees - now, 0.0))
        return None

    def usage(self, limits: RateLimits) -> float:
        used = 0.0
        if limits.rpm is not None:
            used = len(self.requests) / limits.rpm
        if limits.tpm is not None:
            used = max(used, self.token_total / limits.tpm)
        return used


def _token_wait(tokens: deque[tuple[float, int]], total: int, tpm: int, now: float) -> float:
    """Seconds until enough logged tokens leave the window to bring it under ``tpm``."""
    for logged, count in tokens:
        total -= count
        if total < tpm:
            return max(logged + WINDOW - now, 0.0)
    return WINDOW


class MemoryRateLimiter:
    """A :class:`RateLimiter` in this process's memory (one lock; ``clock``: wall seconds).

    Also the fallback of the Redis limiter while Redis is unreachable: each process then
    enforces the limits on its own.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._logs: dict[str, _Log] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryRateLimiter({len(self._logs)} providers)"

    def _log(self, provider: str) -> _Log:
        log = self._logs.get(provider)
        if log is None:
            log = self._logs[provider] = _Log()
        return log

    def acquire(self, provider: str, limits: RateLimits) -> Held | None:
        """See :meth:`RateLimiter.acquire`."""
        with self._lock:
            now = self._clock()
            log = self._log(provider)
            log.trim(now)
            held = log.held(now, limits)
            if held is None and limits.rpm is not None:
                log.requests.append(now)
            return held

    def add_tokens(self, provider: str, limits: RateLimits, tokens: int) -> None:
        """See :meth:`RateLimiter.add_tokens`."""
        if limits.tpm is None or tokens <= 0:
            return
        with self._lock:
            log = self._log(provider)
            log.tokens.append((self._clock(), tokens))
            log.token_total += tokens

    def penalise(self, provider: str, seconds: float) -> None:
        """See :meth:`RateLimiter.penalise`."""
        with self._lock:
            log = self._log(provider)
            log.held_until = max(log.held_until, self._clock() + seconds)

    def usage(self, provider: str, limits: RateLimits) -> float:
        """See :meth:`RateLimiter.usage`."""
        with self._lock:
            now = self._clock()
            log = self._log(provider)
            log.trim(now)
            return 1.0 if log.held_until > now else log.usage(limits)
