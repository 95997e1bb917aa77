"""Wall-clock limits that hold inside a read, whatever the server does (internal).

A socket's read timeout restarts with every byte, so a server trickling one byte every 100 ms,
or sending keep-alive comments, never trips it. Each attempt therefore gets a :class:`Watch`
holding its clocks: the call's deadline, and the current wait's limit (the first chunk, or the
silence between chunks). One daemon thread, the reaper, wakes when the earliest limit is due
and shuts the attempt's socket down; the blocked read returns at once and the transport raises
:class:`ProviderTimeout` with the watch's reason.

The socket is found through the connection that is sending the attempt's request: the
connection classes below attach themselves to the watch of the thread that sends (the
transport sets it around each request), and detach when the pool takes them back, so a
connection at rest in the pool, or serving another call, is never touched.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import socket
import threading
import time
from collections import deque
from typing import Any

import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .errors import ProviderTimeout

_attach_lock = threading.Lock()
#: Seconds: a limit at least this far off is handed to the reaper without taking its lock.
_FAR = 1.0
_sending = threading.local()


class Watch:
    """One attempt's clocks; times are ``time.monotonic()`` seconds.

    ``deadline`` ends the whole call. ``begin_wait(limit)`` starts a wait (for the first chunk,
    or for the next one) that may last ``limit`` seconds; ``end_wait()`` marks progress. Time
    spent outside a wait (the caller handling a chunk) never counts against ``limit``. A
    stream's hot loop, once ``begin_wait`` has set the limit, may restart the same wait by
    setting ``since`` (``time.monotonic()``) and ``waiting`` directly, and end it by clearing
    ``waiting``: the reaper reads both when it wakes.
    """

    __slots__ = (
        "__weakref__",
        "_connection",
        "_done",
        "_limit",
        "_scheduled",
        "_timeout_text",
        "deadline",
        "expired",
        "read_timeout",
        "since",
        "waiting",
        "what",
    )

    def __init__(
        self, deadline: float | None, timeout_text: str = "", read_timeout: float | None = None
    ) -> None:
        self.deadline = deadline
        self._timeout_text = timeout_text
        #: The socket's per-read timeout under this watch (a backstop: the clocks cut first).
        self.read_timeout = read_timeout
        self._limit: float | None = None
        self.since = 0.0
        self.waiting = False
        self.what = ""
        #: Why the watch fired, once it has: the attempt is over.
        self.expired: str | None = None
        self._connection: Any = None
        self._done = False
        # The earliest due time this watch has in the reaper's heap (the reaper's lock guards it).
        self._scheduled: float | None = None
        if deadline is not None:
            _reaper.schedule(self, deadline)

    def begin_wait(self, limit: float | None, what: str) -> None:
        """A wait of at most ``limit`` seconds starts now (``what``: for the error message)."""
        self.since = now = time.monotonic()
        self.waiting = True
        if limit == self._limit and what is self.what and self._scheduled is not None:
            # The next wait of a stream: the reaper's entry is due no later than this wait
            # ends, and it looks again when it wakes. Nothing to hand over: the hot path.
            return
        self._limit = limit
        self.what = what
        due = self._due(now)
        scheduled = self._scheduled
        if due is not None and (scheduled is None or due < scheduled):
            _reaper.schedule(self, due)

    def end_wait(self) -> None:
        """Progress: the wait is over."""
        self.waiting = False

    def until_deadline(self) -> float | None:
        """Seconds until the call's deadline, or ``None`` without one."""
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def check(self, provider: str) -> None:
        """Raise the attempt's :class:`ProviderTimeout` if a limit has passed (plugin output)."""
        if self.expired is None:
            due = self._due(time.monotonic())
            if due is not None and time.monotonic() >= due:
                self._expire()
        if self.expired is not None:
            raise self.error(provider)

    def error(self, provider: str) -> ProviderTimeout:
        """The timeout this watch stands for."""
        return ProviderTimeout(provider, self.expired or "a time limit passed")

    def close(self) -> None:
        """The attempt is over: the reaper forgets this watch."""
        self._done = True
        self.waiting = False

    def cancel(self, reason: str) -> None:
        """End the attempt now, from any thread: ``reason`` becomes its error; socket shut."""
        if self.expired is None:
            self.expired = reason
            self._shut()

    def _due(self, now: float) -> float | None:
        due = self.deadline
        if self.waiting and self._limit is not None:
            end = self.since + self._limit
            due = end if due is None else min(due, end)
        return due

    def _expire(self) -> None:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.expired = f"the call's deadline passed ({self._timeout_text})"
        else:
            self.expired = f"{self.what} within {self._limit or 0:g}s"
        self._shut()

    def _shut(self) -> None:
        with _attach_lock:
            connection = self._connection
            sock = getattr(connection, "sock", None)
            if sock is not None and getattr(connection, "_hypotez_watch", None) is self:
                # The plain socket's shutdown, even under TLS: it wakes a blocked read without
                # touching the TLS object another thread is inside.
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Reaper:
    """One daemon thread that fires watches when their earliest limit is due."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Watch]] = []
        # Far limits (most of them: a call ends long before its 60 s limit) are handed over
        # here without a lock; the reaper drains them at least every _FAR / 2 seconds.
        self._pending: deque[tuple[float, Watch]] = deque()
        self._order = itertools.count()
        self._pushes = 0
        self._wake = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None

    def schedule(self, watch: Watch, due: float | None) -> None:
        if due is None:
            return
        if self._thread is not None and due - time.monotonic() >= _FAR:
            scheduled = watch._scheduled
            if scheduled is None or due < scheduled:
                watch._scheduled = due
                self._pending.append((due, watch))
            return
        with self._wake:
            if watch._scheduled is not None and watch._scheduled <= due:
                return
            self._push(watch, due)
            self._pushes += 1
            if self._pushes % 4096 == 0:
                # Watches closed long before their limit wait in the heap; drop them now and
                # then, so the heap holds about the attempts in flight.
                self._heap = [entry for entry in self._heap if not entry[2]._done]
                heapq.heapify(self._heap)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="hypotez-deadlines", daemon=True
                )
                self._thread.start()
            elif self._heap[0][2] is watch:
                self._wake.notify()

    def _run(self) -> None:
        pending = self._pending
        while True:
            with self._wake:
                while pending:
                    due, watch = pending.popleft()
                    if not watch._done:
                        heapq.heappush(self._heap, (due, next(self._order), watch))
                now = time.monotonic()
                if not self._heap:
                    self._wake.wait(_FAR / 2)
                    continue
                due, _, watch = self._heap[0]
                if due > now:
                    self._wake.wait(min(due - now, _FAR / 2))
                    continue
                heapq.heappop(self._heap)
                if watch._scheduled != due or watch._done or watch.expired is not None:
                    continue  # a stale entry (an earlier one replaced it), or the watch is over
                watch._scheduled = None
                # Lazy: progress only moves the due time later, so check it again now.
                actual = watch._due(now)
                if actual is None:
                    if watch._limit is not None:
                        self._push(watch, now + watch._limit)  # not waiting; look again later
                    continue
                if actual > now:
                    self._push(watch, actual)
                    continue
            watch._expire()

    def _push(self, watch: Watch, due: float) -> None:
        watch._scheduled = due
        heapq.heappush(self._heap, (due, next(self._order), watch))


_reaper = _Reaper()


def _reset_after_fork() -> None:
    # The reaper's thread does not survive a fork (gunicorn workers): the child starts afresh.
    global _reaper
    _reaper = _Reaper()


os.register_at_fork(after_in_child=_reset_after_fork)


def watched_request(watch: Watch | None) -> _Sending:
    """Context manager: requests sent by this thread inside it are bound to ``watch``."""
    return _Sending(watch)


class _Sending:
    __slots__ = ("_previous", "_watch")

    def __init__(self, watch: Watch | None) -> None:
        self._watch = watch
        self._previous: Watch | None = None

    def __enter__(self) -> None:
        self._previous = getattr(_sending, "watch", None)
        _sending.watch = self._watch

    def __exit__(self, *exc_info: object) -> None:
        _sending.watch = self._previous


def _attach(connection: Any) -> None:
    watch = getattr(_sending, "watch", None)
    with _attach_lock:
        connection._hypotez_watch = watch
        if watch is not None:
            watch._connection = connection


def _shut_if_over(connection: Any) -> None:
    # A watch that fired (or was cancelled) while the request was being sent found no socket
    # to shut yet: shut it now, so the read that follows returns at once.
    watch = connection._hypotez_watch
    if watch is not None and watch.expired is not None:
        watch._shut()


def _detach(connection: Any) -> None:
    with _attach_lock:
        watch = getattr(connection, "_hypotez_watch", None)
        if watch is not None:
            watch._connection = None
            connection._hypotez_watch = None


class _WatchedHTTPConnection(HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach(self)
        super().request(*args, **kwargs)
        _shut_if_over(self)


class _WatchedHTTPSConnection(HTTPSConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach(self)
        super().request(*args, **kwargs)
        _shut_if_over(self)


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection

    def _put_conn(self, conn: Any) -> None:
        if conn is not None:
            _detach(conn)
        super()._put_conn(conn)


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection

    def _put_conn(self, conn: Any) -> None:
        if conn is not None:
            _detach(conn)
        super()._put_conn(conn)


_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class WatchedAdapter(HTTPAdapter):
    """requests' adapter, with connections that a :class:`Watch` can interrupt."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """Build the pool manager with watched connection pools."""
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> urllib3.ProxyManager:
        """The proxy manager of requests, with watched connection pools."""
        manager: urllib3.ProxyManager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = _POOLS
        return manager
