"""Rate limits kept on Redis, so every process and machine sharing it holds them together.

The same sliding log of 60 seconds as :mod:`hypotez_providers.rate_limits`, with Redis' own
clock (``TIME``) for every process. Per provider, under the connection's namespace:

- ``ratelimit:<provider>:requests``: a sorted set of admitted requests, scored by time;
- ``ratelimit:<provider>:tokens``: a sorted set of ``<id>:<tokens>`` entries, scored by time,
  and ``ratelimit:<provider>:token_total``, their running sum (entries that leave the window
  are subtracted as they are trimmed, so no call sums the whole log);
- ``ratelimit:<provider>:held``: present while a 429 holds the provider back.

Each key expires 61 s after its last write. An acquire is one Lua script (one round trip):
trim, check the penalty, the tokens and the requests, and log the request if admitted, all
atomically. When Redis is unavailable the calls go to a :class:`MemoryRateLimiter` of this
process until it is back.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..rate_limits import WINDOW, Held, MemoryRateLimiter, RateLimits
from .connection import UNAVAILABLE, RedisConnection

if TYPE_CHECKING:
    from ..settings import Settings

# KEYS: requests, tokens, token_total, held. ARGV: rpm (0: none), tpm (0: none), request id,
# "take" to log an admitted request or "peek" to only look.
# Returns {verdict, requests in window, tokens in window, wait}: verdict "ok", "rpm", "tpm" or
# "429"; numbers as strings (a Lua number would come back truncated to an integer).
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local cut = now - tonumber(ARGV[5])
local rpm, tpm = tonumber(ARGV[1]), tonumber(ARGV[2])
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', cut)
if #gone > 0 then
  local sum = 0
  for i = 1, #gone do sum = sum + tonumber(string.match(gone[i], ':(%d+)$')) end
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', cut)
  redis.call('DECRBY', KEYS[3], sum)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cut)
local used = tonumber(redis.call('GET', KEYS[3]) or '0')
if used < 0 then used = 0 end
local count = redis.call('ZCARD', KEYS[1])
local held = redis.call('PTTL', KEYS[4])
if held > 0 then
  return {'429', tostring(count), tostring(used), tostring(held / 1000)}
end
if tpm > 0 and used >= tpm then
  local entries = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
  local left = used
  for i = 1, #entries, 2 do
    left = left - tonumber(string.match(entries[i], ':(%d+)$'))
    if left < tpm then
      local wait = tonumber(entries[i + 1]) + tonumber(ARGV[5]) - now
      return {'tpm', tostring(count), tostring(used), tostring(wait)}
    end
  end
  return {'tpm', tostring(count), tostring(used), ARGV[5]}
end
if rpm > 0 and count >= rpm then
  local oldest = redis.call('ZRANGE', KEYS[1], count - rpm, count - rpm, 'WITHSCORES')
  local wait = tonumber(oldest[2]) + tonumber(ARGV[5]) - now
  return {'rpm', tostring(count), tostring(used), tostring(wait)}
end
if rpm > 0 and ARGV[4] == 'take' then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('EXPIRE', KEYS[1], 61)
end
return {'ok', tostring(count), tostring(used), '0'}
"""

# KEYS: tokens, token_total. ARGV: "<id>:<tokens>", tokens.
_ADD_TOKENS = """
local t = redis.call('TIME')
redis.call('ZADD', KEYS[1], tonumber(t[1]) + tonumber(t[2]) / 1000000, ARGV[1])
redis.call('INCRBY', KEYS[2], ARGV[2])
redis.call('EXPIRE', KEYS[1], 61)
redis.call('EXPIRE', KEYS[2], 61)
"""

# KEYS: held. ARGV: milliseconds. The longer of the current and the new penalty wins.
_PENALISE = """
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
"""


class RedisRateLimiter:
    """A :class:`~hypotez_providers.rate_limits.RateLimiter` on Redis, shared by a fleet.

    ``fallback`` (default: a fresh :class:`MemoryRateLimiter`) answers while ``connection``
    reports Redis unavailable, so a call is never refused or delayed for Redis' sake.
    """

    def __init__(
        self, connection: RedisConnection, *, fallback: MemoryRateLimiter | None = None
    ) -> None:
        self.connection = connection
        self.fallback = fallback or MemoryRateLimiter()
        self._acquire = connection.script(_ACQUIRE)
        self._add_tokens = connection.script(_ADD_TOKENS)
        self._penalise = connection.script(_PENALISE)
        # Ids of logged entries: unique across processes and machines without asking Redis.
        self._prefix = f"{os.urandom(6).hex()}-{os.getpid()}-"
        self._ids = itertools.count()
        self._keys: dict[str, list[str]] = {}

    def __repr__(self) -> str:
        return f"RedisRateLimiter({self.connection!r})"

    def _keys_of(self, provider: str) -> list[str]:
        keys = self._keys.get(provider)
        if keys is None:
            key = self.connection.key
            keys = [
                key("ratelimit", provider, part)
                for part in ("requests", "tokens", "token_total", "held")
            ]
            self._keys[provider] = keys
        return keys

    def _check(self, provider: str, limits: RateLimits, mode: str) -> list[Any] | None:
        keys = self._keys_of(provider)
        arguments = [
            limits.rpm or 0,
            limits.tpm or 0,
            f"{self._prefix}{next(self._ids)}",
            mode,
            WINDOW,
        ]
        script = self._acquire
        answer = self.connection.run(
            lambda client: script(keys=keys, args=arguments, client=client)
        )
        return None if answer is UNAVAILABLE else list(answer)

    def acquire(self, provider: str, limits: RateLimits) -> Held | None:
        """See :meth:`RateLimiter.acquire <hypotez_providers.rate_limits.RateLimiter.acquire>`."""
        answer = self._check(provider, limits, "take")
        if answer is None:
            return self.fallback.acquire(provider, limits)
        verdict = answer[0].decode() if isinstance(answer[0], bytes) else str(answer[0])
        if verdict == "ok":
            return None
        wait = max(float(answer[3]), 0.0)
        if verdict == "rpm":
            return Held("rpm", limits.rpm or 0, wait)
        if verdict == "tpm":
            return Held("tpm", limits.tpm or 0, wait)
        return Held("429", 0, wait)

    def add_tokens(self, provider: str, limits: RateLimits, tokens: int) -> None:
        """See :meth:`RateLimiter.add_tokens <hypotez_providers.rate_limits.RateLimiter>`."""
        if limits.tpm is None or tokens <= 0:
            return
        keys = self._keys_of(provider)[1:3]
        arguments = [f"{self._prefix}{next(self._ids)}:{tokens}", tokens]
        script = self._add_tokens
        done = self.connection.run(lambda client: script(keys=keys, args=arguments, client=client))
        if done is UNAVAILABLE:
            self.fallback.add_tokens(provider, limits, tokens)

    def penalise(self, provider: str, seconds: float) -> None:
        """See :meth:`RateLimiter.penalise <hypotez_providers.rate_limits.RateLimiter>`."""
        keys = self._keys_of(provider)[3:]
        arguments = [max(int(seconds * 1000), 1)]
        script = self._penalise
        done = self.connection.run(lambda client: script(keys=keys, args=arguments, client=client))
        if done is UNAVAILABLE:
            self.fallback.penalise(provider, seconds)

    def usage(self, provider: str, limits: RateLimits) -> float:
        """See :meth:`RateLimiter.usage <hypotez_providers.rate_limits.RateLimiter.usage>`."""
        answer = self._check(provider, limits, "peek")
        if answer is None:
            return self.fallback.usage(provider, limits)
        verdict = answer[0].decode() if isinstance(answer[0], bytes) else str(answer[0])
        if verdict == "429":
            return 1.0
        used = 0.0
        if limits.rpm is not None:
            used = int(answer[1]) / limits.rpm
        if limits.tpm is not None:
            used = max(used, int(answer[2]) / limits.tpm)
        return used


def shared_limiter(
    settings: Settings, environ: Mapping[str, str] | None = None
) -> RedisRateLimiter | None:
    """A :class:`RedisRateLimiter` on the process's shared connection, when a URL is set.

    The connection is :func:`~hypotez_providers.state.shared_connection`'s, so the limiter and
    the circuit breaker share it.
    """
    from . import shared_connection  # the package imports this module's siblings first

    connection = shared_connection(settings, environ)
    return None if connection is None else RedisRateLimiter(connection)
