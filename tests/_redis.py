"""A real ``redis-server`` on 127.0.0.1 for the shared-state tests (never a mock).

Tests that need it skip when ``redis-server`` is not installed (``.ci/run`` installs it, and
fails when it cannot).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hypotez_providers.testing.redis_server import RedisServer

__all__ = ["RedisServer", "running_redis"]


@contextmanager
def running_redis(directory: Path) -> Iterator[RedisServer]:
    if RedisServer.binary() is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()
