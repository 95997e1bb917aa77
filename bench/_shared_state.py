"""Parts of ``bench/state.py``: a redis-server of its own, the contenders, the 4 x 4 hammer.

Run as a script (``python3 bench/_shared_state.py worker REDIS_URL UPSTREAM_URL THREADS``) it
is one hammering process: it reads ``<contender> <seconds>`` lines on stdin, runs that many
threads calling the contender for that long, and answers one JSON line with its call count.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workloads
from workloads import MESSAGES, MODEL

from hypotez_providers import Registry, Router
from hypotez_providers.settings import EndpointSettings, Settings
from hypotez_providers.state import StateSettings
from hypotez_providers.testing.redis_server import RedisServer

#: An rpm no benchmark reaches: the limiter is asked on every call and never refuses.
HIGH_RPM = 1_000_000_000
#: No persistence (nothing written to disk while it runs), in a directory of its own.
#: Seconds a Redis operation may take here (see :func:`registry`).
TIMEOUT = 2.0
CONTENDERS = (
    "raw requests",
    "memory breaker",
    "Redis breaker, fresh_for 0",
    "Redis breaker",
    "Redis breaker + rpm",
)


class RedisProcess(RedisServer):
    """A started redis-server in a temporary directory, removed by :meth:`stop`."""

    def __init__(self, binary: str) -> None:
        self._directory = tempfile.TemporaryDirectory()
        super().__init__(Path(self._directory.name))
        self.start()

    def stop(self) -> None:
        """Kill the server and remove its directory."""
        super().stop()
        self._directory.cleanup()


def registry(
    upstream: str, redis_url: str | None, rpm: int | None, fresh_for: float = 0.25
) -> Registry:
    """One endpoint on the fast upstream, alias ``only-fast``; shared state when a URL is given
    (``fresh_for`` 0: the breaker asks Redis on every admit)."""
    endpoint = EndpointSettings(
        base_url=upstream + "/v1", models=(MODEL,), include_usage=False, rpm=rpm
    )
    settings = Settings(
        endpoints={"fast": endpoint},
        aliases={"only-fast": ("fast:" + MODEL,)},
        # A generous timeout: on a loaded machine 50 ms (the default) runs out now and then,
        # and the calls meanwhile would measure the memory fallback instead of Redis.
        state=StateSettings(url=redis_url, timeout=TIMEOUT, fresh_for=fresh_for),  # type: ignore[arg-type]
    )
    return Registry(settings=settings, load_entry_points=False, environ={})


def contenders(upstream: str, redis_url: str) -> dict[str, Callable[[], object]]:
    """The five contenders of every workload, by name (see :data:`CONTENDERS`)."""
    session = requests.Session()
    memory = Router(registry(upstream, None, None))
    asking = Router(registry(upstream, redis_url, None, fresh_for=0))
    shared = Router(registry(upstream, redis_url, None))
    limited = Router(registry(upstream, redis_url, HIGH_RPM))
    assert type(memory.breaker).__name__ == "MemoryCircuitBreaker"
    assert type(shared.breaker).__name__ == "RedisCircuitBreaker"
    assert type(limited.limiter).__name__ == "RedisRateLimiter"
    return {
        "raw requests": lambda: workloads.raw_call(session, upstream),
        "memory breaker": lambda: memory.complete("only-fast", MESSAGES),
        "Redis breaker, fresh_for 0": lambda: asking.complete("only-fast", MESSAGES),
        "Redis breaker": lambda: shared.complete("only-fast", MESSAGES),
        "Redis breaker + rpm": lambda: limited.complete("only-fast", MESSAGES),
    }


def worker(redis_url: str, upstream: str, threads: int) -> None:
    """One hammering process (see the module docs)."""
    calls = contenders(upstream, redis_url)
    fallbacks = _FallbackCounter()
    logging.getLogger("hypotez_providers.state").addHandler(fallbacks)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        name, seconds = line.rsplit(" ", 1)
        call = calls[name]
        counts = [0] * threads
        deadline = time.perf_counter() + float(seconds)

        def hammer(index: int, call: Callable[[], object], counts: list[int], until: float) -> None:
            while time.perf_counter() < until:
                call()
                counts[index] += 1

        pool = [
            threading.Thread(target=hammer, args=(i, call, counts, deadline))
            for i in range(threads)
        ]
        started = time.perf_counter()
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        elapsed = time.perf_counter() - started
        answer = {"calls": sum(counts), "seconds": elapsed, "fallbacks": fallbacks.take()}
        print(json.dumps(answer), flush=True)


class _FallbackCounter(logging.Handler):
    """Counts the times Redis was found unreachable (the calls went to memory meanwhile)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "unreachable" in record.getMessage():
            self.count += 1

    def take(self) -> int:
        """The count since the last take."""
        count, self.count = self.count, 0
        return count


class Fleet:
    """``processes`` hammering processes of ``threads`` threads each, started once."""

    def __init__(self, redis_url: str, upstream: str, processes: int, threads: int) -> None:
        self.workers = [
            subprocess.Popen(
                [sys.executable, __file__, "worker", redis_url, upstream, str(threads)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(processes)
        ]
        for process in self.workers:
            assert process.stdout is not None
            json.loads(process.stdout.readline())

    def run(self, name: str, seconds: float) -> tuple[float, int]:
        """Every process hammers ``name`` for ``seconds``: the calls per second of them all,
        and how many times one found Redis unreachable."""
        for process in self.workers:
            assert process.stdin is not None
            process.stdin.write(f"{name} {seconds}\n")
            process.stdin.flush()
        rate, fallbacks = 0.0, 0
        for process in self.workers:
            assert process.stdout is not None
            answer = json.loads(process.stdout.readline())
            rate += answer["calls"] / answer["seconds"]
            fallbacks += answer["fallbacks"]
        return rate, fallbacks

    def stop(self) -> None:
        """End the processes."""
        for process in self.workers:
            if process.stdin is not None:
                process.stdin.close()
        for process in self.workers:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__" and sys.argv[1:2] == ["worker"]:
    worker(sys.argv[2], sys.argv[3], int(sys.argv[4]))
