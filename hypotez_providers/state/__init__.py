"""Shared state: circuits and rate limits kept where every process can see them.

By default each process keeps its own (in memory). With ``[state] url = "redis://..."`` in the
settings, or ``HYPOTEZ_STATE_URL``, they live on Redis, shared by every process and machine
that names the same server; see ``docs/scaling.md``.
"""

from __future__ import annotations

from .connection import UNAVAILABLE, RedisConnection, Unavailable

__all__ = ["UNAVAILABLE", "RedisConnection", "Unavailable"]
