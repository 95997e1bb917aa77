"""Shared state: circuits and rate limits kept where every process can see them.

By default each process keeps its own (in memory). With ``[state] url = "redis://..."`` in the
settings, or ``HYPOTEZ_STATE_URL``, they live on Redis, shared by every process and machine
that names the same server; see ``docs/scaling.md``. Only a process given a URL imports the
``redis`` client (the ``state`` extra: ``pip install 'hypotez-providers[state]'``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .connection import UNAVAILABLE, RedisConnection, Unavailable, masked_url
from .redis_breaker import RedisCircuitBreaker
from .settings import URL_ENV, StateSettings

if TYPE_CHECKING:
    from ..settings import Settings

__all__ = [
    "UNAVAILABLE",
    "URL_ENV",
    "RedisCircuitBreaker",
    "RedisConnection",
    "StateSettings",
    "Unavailable",
    "masked_url",
    "shared_breaker",
    "shared_connection",
]

_connections: dict[tuple[int, str, str, float], RedisConnection] = {}
_lock = threading.Lock()


def shared_connection(
    settings: Settings, environ: Mapping[str, str] | None = None
) -> RedisConnection | None:
    """The one connection of this process to the shared store the settings name, or ``None``.

    ``HYPOTEZ_STATE_URL`` wins over ``[state] url``. Every caller in a process (the circuit
    breaker, the rate limiter) gets the same :class:`RedisConnection` for the same URL,
    namespace and timeout; a forked child makes its own.
    """
    state = settings.state
    url = state.effective_url(environ)
    if not url:
        return None
    key = (os.getpid(), url, state.namespace, state.timeout)
    with _lock:
        connection = _connections.get(key)
        if connection is None:
            connection = RedisConnection(url, namespace=state.namespace, timeout=state.timeout)
            _connections[key] = connection
        return connection


def shared_breaker(
    settings: Settings, environ: Mapping[str, str] | None = None
) -> RedisCircuitBreaker | None:
    """A :class:`RedisCircuitBreaker` with the settings' health policy, when a URL is set."""
    connection = shared_connection(settings, environ)
    if connection is None:
        return None
    return RedisCircuitBreaker(connection, settings.health, fresh_for=settings.state.fresh_for)
