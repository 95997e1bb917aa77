"""A cheap HTTP client for bench/gateway.py: open-loop load at a fixed rate, and stream readers.

The client is plain ``http.client`` with one keep-alive connection per thread, so what it adds
is small and the same for every target. Open loop: request ``i`` is due at ``start + i/rate``
whatever happened to the ones before, and its latency counts from when it was due, so a slow
answer cannot hide the queue behind it (no coordinated omission).
"""

from __future__ import annotations

import http.client
import itertools
import json
import secrets
import statistics
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

MESSAGES = [{"role": "user", "content": "What is the answer?"}]
#: Sent to every server: LiteLLM's proxy refuses to start without a strong master key; the
#: fake upstream and a gateway without keys ignore it.
KEY = "sk-bench-" + secrets.token_hex(32)
_HEADERS = {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"}
#: What a content piece of the fake's long stream looks like on the wire, through any server.
_PIECE = b'"tok "'


@dataclass
class Run:
    """One open-loop run against one target: latencies in seconds, from when each was due."""

    latencies: list[float] = field(default_factory=list)
    first_bytes: list[float] = field(default_factory=list)
    #: How late the client sent each request (the load generator's own lag).
    lateness: list[float] = field(default_factory=list)
    errors: int = 0
    sent: int = 0
    #: CPU seconds the server spent in these runs (filled by the caller).
    cpu: float = 0.0
    seconds: float = 0.0

    def extend(self, other: Run) -> None:
        """Add another block's results to this one."""
        self.latencies += other.latencies
        self.first_bytes += other.first_bytes
        self.lateness += other.lateness
        self.errors += other.errors
        self.sent += other.sent
        self.cpu += other.cpu
        self.seconds += other.seconds

    @property
    def rate(self) -> float:
        """Requests answered per second: below the rate asked when the server fell behind."""
        return len(self.latencies) / self.seconds if self.seconds else 0.0


def percentile(values: list[float], share: float) -> float:
    """The ``share`` quantile (0.5, 0.99) of ``values``, interpolated."""
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=1000, method="inclusive")[round(share * 1000) - 1]


def body(model: str, *, stream: bool = False, max_tokens: int | None = None) -> bytes:
    """A small chat request."""
    payload: dict[str, object] = {"model": model, "messages": MESSAGES}
    if stream:
        payload["stream"] = True
    if max_tokens is not None:
        payload["max_tokens"] = max_tokens
    return json.dumps(payload).encode()


def connect(url: str) -> http.client.HTTPConnection:
    """A keep-alive connection to ``url``'s host."""
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)


def exchange(
    connection: http.client.HTTPConnection, payload: bytes, *, started: float
) -> tuple[int, float, bytes]:
    """POST one chat request; its status, seconds to the first body line, and the body."""
    connection.request("POST", "/v1/chat/completions", payload, _HEADERS)
    response = connection.getresponse()
    first = response.readline()
    first_byte = time.perf_counter() - started
    rest = response.read()
    return response.status, first_byte, first + rest


def open_loop(
    connections: list[http.client.HTTPConnection], payload: bytes, rate: float, seconds: float
) -> Run:
    """``rate`` requests a second for ``seconds``, each due at its slot, one thread a connection.

    The connections are kept open between calls (keep-alive), so a block measures requests,
    not TCP handshakes; one the server closed is reopened at its next request.
    """
    count = max(1, round(rate * seconds))
    slots = itertools.count()
    run = Run()
    lock = threading.Lock()
    start = time.perf_counter() + 0.02

    def worker(connection: http.client.HTTPConnection) -> None:
        latencies, first_bytes, lateness, errors = [], [], [], 0
        while (slot := next(slots)) < count:
            due = start + slot / rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            lateness.append(time.perf_counter() - due)
            try:
                status, first_byte, _ = exchange(connection, payload, started=due)
            except (OSError, http.client.HTTPException):
                connection.close()
                errors += 1
                continue
            if status != 200:
                errors += 1
                continue
            latencies.append(time.perf_counter() - due)
            first_bytes.append(first_byte)
        with lock:
            run.latencies += latencies
            run.first_bytes += first_bytes
            run.lateness += lateness
            run.errors += errors

    pool = [threading.Thread(target=worker, args=(c,)) for c in connections]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    run.sent = count
    # The run lasts its schedule, or longer when answers came late.
    run.seconds = max(count / rate, time.perf_counter() - start)
    return run


def read_stream(connection: http.client.HTTPConnection, payload: bytes) -> tuple[int, float]:
    """Read one streamed answer to its end: content pieces seen, and seconds taken."""
    started = time.perf_counter()
    try:
        connection.request("POST", "/v1/chat/completions", payload, _HEADERS)
        response = connection.getresponse()
        if response.status != 200:
            raise RuntimeError(f"status {response.status}: {response.read()[:200]!r}")
        pieces, tail = 0, b""
        while block := response.read1(65536):
            # The tail carries a piece cut between two reads into the next count.
            joined = tail + block
            pieces += joined.count(_PIECE)
            keep = len(joined) - len(_PIECE) + 1
            cut = joined.rfind(_PIECE)
            if cut >= 0:
                keep = max(keep, cut + len(_PIECE))
            tail = joined[max(keep, 0) :]
    except (OSError, http.client.HTTPException):
        connection.close()  # reopened at its next request; this stream counts what it read
        raise
    return pieces, time.perf_counter() - started


def concurrent_streams(
    connections: list[http.client.HTTPConnection], payload: bytes
) -> tuple[list[int], float, list[str]]:
    """One streamed answer on each connection, all at once: pieces each, seconds, failures.

    A stream that failed counts ``-1`` pieces and its error is among the failures. Open the
    connections beforehand (a first read each, one after another): 64 connects at once
    overflow a small server's accept queue, and that measures the queue, not the stream.
    """
    pieces = [0] * len(connections)
    failures: list[str] = []
    ready = threading.Barrier(len(connections) + 1)

    def reader(index: int) -> None:
        ready.wait()
        try:
            pieces[index] = read_stream(connections[index], payload)[0]
        except (OSError, http.client.HTTPException, RuntimeError) as error:
            pieces[index] = -1
            failures.append(f"{type(error).__name__}: {error}")

    pool = [threading.Thread(target=reader, args=(index,)) for index in range(len(connections))]
    for thread in pool:
        thread.start()
    ready.wait()
    started = time.perf_counter()
    for thread in pool:
        thread.join()
    return pieces, time.perf_counter() - started, failures
