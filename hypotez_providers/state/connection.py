"""A Redis connection that never makes a call fail, nor wait long.

Every operation has a short timeout (``timeout``, 50 ms by default) and no retry of its own.
When Redis fails (refused, reset, timed out), :meth:`RedisConnection.run` returns
:data:`UNAVAILABLE` and the connection stays marked down for ``retry_interval`` seconds, so
the calls meanwhile fall back to process memory at no cost instead of each waiting out a
timeout; then the next operation tries Redis again. Going down and coming back are each
logged once, with the URL's password masked.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import Enum
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit, urlunsplit

from ..redaction import logger_for

T = TypeVar("T")
logger = logger_for("hypotez_providers.state")


class Unavailable(Enum):
    """The result of an operation that could not reach Redis: test with ``is UNAVAILABLE``."""

    UNAVAILABLE = "unavailable"


#: Returned by :meth:`RedisConnection.run` when Redis could not answer in time.
UNAVAILABLE: Final = Unavailable.UNAVAILABLE


def masked_url(url: str) -> str:
    """``url`` with its password (and a user name that may be a token) replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable Redis URL>"
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, ""))


class RedisConnection:
    """One Redis server, used by every breaker and limiter of a process (thread-safe).

    ``namespace`` prefixes every key (``hypotez:`` by default), so one Redis can serve other
    applications, or several independent fleets with different namespaces.
    """

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "hypotez",
        timeout: float = 0.05,
        retry_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        import redis  # only a process that asks for shared state pays for the import
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.url = masked_url(url)
        self.namespace = namespace
        self.retry_interval = retry_interval
        self._clock = clock
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self.client: Any = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        self._down_until = 0.0
        self._down = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RedisConnection({self.url!r}, namespace={self.namespace!r})"

    def key(self, *parts: str) -> str:
        """A namespaced key: ``hypotez:circuit:openai``."""
        return ":".join((self.namespace, *parts))

    @property
    def available(self) -> bool:
        """Whether Redis is worth asking now (not marked down)."""
        return not self._down or self._clock() >= self._down_until

    def run(self, operation: Callable[[Any], T]) -> T | Unavailable:
        """``operation(client)``'s result, or :data:`UNAVAILABLE` if Redis failed or is down."""
        if self._down and self._clock() < self._down_until:
            return UNAVAILABLE
        try:
            result = operation(self.client)
        except self._errors as error:
            self._went_down(error)
            return UNAVAILABLE
        if self._down:
            self._came_back()
        return result

    def script(self, source: str) -> Any:
        """A Lua script registered once (``EVALSHA``, loaded again if Redis restarted)."""
        return self.client.register_script(source)

    def close(self) -> None:
        """Close the pooled connections."""
        self.client.close()

    def _went_down(self, error: BaseException) -> None:
        with self._lock:
            self._down_until = self._clock() + self.retry_interval
            if self._down:
                return
            self._down = True
        logger.warning(
            "Redis at %s is unreachable (%s); using this process's memory until it is back",
            self.url,
            type(error).__name__,
        )

    def _came_back(self) -> None:
        with self._lock:
            if not self._down:
                return
            self._down = False
        logger.warning("Redis at %s is back; shared state resumes", self.url)
