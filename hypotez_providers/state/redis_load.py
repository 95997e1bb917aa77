"""Load-balancing stats kept on Redis, so every process balances by what all of them see.

Per provider, under the connection's namespace:

- ``load:<provider>:busy``: requests in flight (``INCR`` when one starts, ``DECR`` when it
  ends); it expires :data:`BUSY_TTL` seconds after its last change, so the count of a process
  that died mid-request does not stay forever;
- ``load:<provider>:latency``: the EWMA of the recent latencies, and ``load:<provider>:recent``
  the last ``window`` of them (a list, newest first), both written by one Lua script per
  success and expiring after :data:`LATENCY_TTL` seconds without one.

Each operation is one round trip, made only under the strategies that read the stats
(``least_busy``, ``fastest``) or a percentile hedge. When Redis is unavailable the operation
goes to a :class:`MemoryLoadStats` of this process until it is back; a request started on
one side and finished on the other leaves the shared count one too high until it expires.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..balancing import MemoryLoadStats
from .connection import UNAVAILABLE, RedisConnection

if TYPE_CHECKING:
    from ..settings import Settings

#: Seconds an in-flight count lives after its last change.
BUSY_TTL = 600
#: Seconds the latencies live after the last success.
LATENCY_TTL = 3600

# KEYS: latency, recent. ARGV: latency, smoothing, window, ttl.
_MEASURED = """
local x, a = tonumber(ARGV[1]), tonumber(ARGV[2])
local previous = redis.call('GET', KEYS[1])
local average = x
if previous then average = tonumber(previous) * (1 - a) + x * a end
redis.call('SET', KEYS[1], tostring(average), 'EX', ARGV[4])
redis.call('LPUSH', KEYS[2], ARGV[1])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]) - 1)
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 1
"""


class RedisLoadStats:
    """:class:`~hypotez_providers.LoadStats` on Redis, falling back to memory while it is down."""

    def __init__(
        self, connection: RedisConnection, *, window: int = 100, smoothing: float = 0.3
    ) -> None:
        self.connection = connection
        self._window = window
        self._smoothing = smoothing
        self._memory = MemoryLoadStats(window=window, smoothing=smoothing)
        self._measured = connection.script(_MEASURED)

    def __repr__(self) -> str:
        return f"RedisLoadStats({self.connection!r})"

    def _key(self, provider: str, part: str) -> str:
        return self.connection.key("load", provider, part)

    def started(self, provider: str) -> None:
        """A request to ``provider`` is now in flight."""
        if self._count(provider, 1) is UNAVAILABLE:
            self._memory.started(provider)

    def finished(self, provider: str) -> None:
        """A request to ``provider`` is no longer in flight."""
        if self._count(provider, -1) is UNAVAILABLE:
            self._memory.finished(provider)

    def _count(self, provider: str, step: int) -> object:
        """Add ``step`` to the provider's in-flight count, renewing its expiry; one round trip."""
        key = self._key(provider, "busy")

        def add(client: Any) -> object:
            pipe = client.pipeline(transaction=False)
            pipe.incrby(key, step)
            pipe.expire(key, BUSY_TTL)
            return pipe.execute()

        return self.connection.run(add)

    def measured(self, provider: str, latency: float) -> None:
        """A success after ``latency`` seconds (to the first chunk of a stream)."""
        keys = [self._key(provider, "latency"), self._key(provider, "recent")]
        arguments = [repr(latency), repr(self._smoothing), self._window, LATENCY_TTL]
        if (
            self.connection.run(lambda client: self._measured(keys, arguments, client=client))
            is UNAVAILABLE
        ):
            self._memory.measured(provider, latency)

    def in_flight(self, provider: str) -> int:
        """Requests to ``provider`` in flight now, in every process sharing the store."""
        value = self.connection.run(lambda client: client.get(self._key(provider, "busy")))
        if value is UNAVAILABLE:
            return self._memory.in_flight(provider)
        return max(0, int(value or 0))

    def latency(self, provider: str) -> float | None:
        """The recent latency (EWMA, seconds), or ``None`` before any success."""
        value = self.connection.run(lambda client: client.get(self._key(provider, "latency")))
        if value is UNAVAILABLE:
            return self._memory.latency(provider)
        return None if value is None else float(value)

    def percentile(self, provider: str, percent: float, *, at_least: int = 10) -> float | None:
        """The ``percent`` percentile of the recent latencies; ``None`` with fewer samples."""
        values = self.connection.run(
            lambda client: client.lrange(self._key(provider, "recent"), 0, -1)
        )
        if values is UNAVAILABLE:
            return self._memory.percentile(provider, percent, at_least=at_least)
        recent = sorted(float(value) for value in values)
        if len(recent) < at_least:
            return None
        rank = min(len(recent) - 1, max(0, math.ceil(percent / 100 * len(recent)) - 1))
        return recent[rank]


def shared_load_stats(
    settings: Settings, environ: Mapping[str, str] | None = None
) -> RedisLoadStats | None:
    """A :class:`RedisLoadStats` on the process's shared connection, when a URL is set."""
    from . import shared_connection  # the package imports this module's siblings first

    connection = shared_connection(settings, environ)
    return None if connection is None else RedisLoadStats(connection)
