"""The vendor-neutral part of a fake upstream: a threaded HTTP/1.1 server with fault injection.

A vendor's fake subclasses :class:`FakeUpstream` and implements :meth:`FakeUpstream.handle`,
writing its wire format through a :class:`Responder`; it never touches a socket itself.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .faults import Fault, StreamEvents, after_preamble, before_piece, send_endless

HTML_ERROR_PAGE = (
    "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1>"
    "</center><hr><center>nginx</center></body></html>"
)
# How often a waiting fault checks whether its client has gone away.
_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class RecordedRequest:
    """A request the fake received: method, path, lower-cased headers and raw body."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        """The body parsed as JSON, or ``None`` if it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class Responder:
    """Writes one HTTP answer: whole (``send_json``/``send_text``) or streamed in chunks.

    ``slow_headers`` and ``trickle`` pace the head and the body one byte at a time (see
    :class:`Fault`); every wait ends, raising :class:`ConnectionAbortedError`, once ``stopping``
    is set or the client has gone away.
    """

    def __init__(
        self,
        handler: BaseHTTPRequestHandler,
        *,
        slow_headers: float = 0.0,
        trickle: float = 0.0,
        stopping: threading.Event | None = None,
    ) -> None:
        self._handler = handler
        self._slow_headers = slow_headers
        self._trickle = trickle
        self._stopping = stopping if stopping is not None else threading.Event()

    def send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        """Send ``obj`` as a JSON body."""
        self.send_text(status, json.dumps(obj), "application/json", headers)

    def send_text(
        self,
        status: int,
        text: str | bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Send a whole body with a Content-Length."""
        body = text.encode() if isinstance(text, str) else text
        fields = {"Content-Type": content_type, "Content-Length": str(len(body))}
        self._send_head(status, {**fields, **(headers or {})})
        self._write(body, self._trickle)

    def start_stream(
        self, content_type: str, status: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        """Send the headers of a chunked (streamed) answer."""
        fields = {
            "Content-Type": content_type,
            "Transfer-Encoding": "chunked",
            "Cache-Control": "no-cache",
        }
        self._send_head(status, {**fields, **(headers or {})})

    def write_chunk(self, data: bytes) -> None:
        """Send ``data`` as one HTTP chunk (at once, unless trickled)."""
        self._write(b"%x\r\n%s\r\n" % (len(data), data), self._trickle)

    def end_stream(self) -> None:
        """End the chunked body properly."""
        self._write(b"0\r\n\r\n", self._trickle)

    def drop(self) -> None:
        """Break the connection abruptly (no terminating chunk)."""
        handler = self._handler
        handler.close_connection = True
        try:
            handler.wfile.flush()
            handler.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        handler.connection.close()

    def pause(self, seconds: float) -> None:
        """Wait ``seconds`` (none if not positive), sending nothing.

        Raises :class:`ConnectionAbortedError` as soon as the fake stops or the client has
        gone away, so that no fault outlives its server or its client.
        """
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            if self._stopping.wait(min(remaining, _POLL_SECONDS)):
                raise ConnectionAbortedError("the fake upstream is stopping")
            if self._client_gone():
                raise ConnectionAbortedError("the client went away")

    def _send_head(self, status: int, headers: dict[str, str]) -> None:
        handler = self._handler
        phrase = handler.responses.get(status, ("",))[0]
        lines = [
            f"HTTP/1.1 {status} {phrase}",
            f"Server: {handler.version_string()}",
            f"Date: {handler.date_time_string()}",
        ]
        for name, value in headers.items():
            lines.append(f"{name}: {value}")
            if name.lower() == "connection" and value.lower() == "close":
                handler.close_connection = True
        head = "\r\n".join(lines) + "\r\n\r\n"
        self._write(head.encode("latin-1"), self._slow_headers)

    def _write(self, data: bytes, pace: float) -> None:
        wfile = self._handler.wfile
        if pace <= 0:
            wfile.write(data)
            wfile.flush()
            return
        for at in range(len(data)):
            self.pause(pace)
            wfile.write(data[at : at + 1])
            wfile.flush()

    def _client_gone(self) -> bool:
        # Readable with nothing to read is the client's end of the connection.
        connection = self._handler.connection
        try:
            readable, _, _ = select.select([connection], [], [], 0)
            return bool(readable) and not connection.recv(1, socket.MSG_PEEK)
        except (OSError, ValueError):
            return True


class FakeUpstream:
    """A local HTTP server on 127.0.0.1 whose answers a subclass defines, with injectable faults.

    Use as a context manager (or ``start()``/``stop()``); ``url`` is its base URL. ``faults``
    is consumed one per request, first in first out; ``fail_every_request`` applies to all.
    ``requests`` records what arrived. For streams, set ``hold_before_last`` to an Event to
    make the server wait for it before the last content chunk; ``last_chunk_sent`` is set once
    that chunk is written. ``stopping`` is set by ``stop()``; every wait of a fault ends then.
    ``host`` and ``port`` say where ``start()`` listens (127.0.0.1 and a free port unless
    changed before it).
    """

    def __init__(self) -> None:
        self.faults: deque[Fault] = deque()
        self.fail_every_request: Fault | None = None
        self.requests: list[RecordedRequest] = []
        self.hold_before_last: threading.Event | None = None
        self.last_chunk_sent = threading.Event()
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self.host = "127.0.0.1"
        self.port = 0
        self.url = ""

    def __enter__(self) -> FakeUpstream:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start serving in a background thread."""
        upstream = self
        self.stopping.clear()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes; with Nagle on, the client's delayed
            # ACK would add ~40 ms to every answer.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                """Stay quiet."""

            def setup(self) -> None:
                super().setup()
                with upstream._lock:
                    upstream._connections.add(self.connection)

            def finish(self) -> None:
                with upstream._lock:
                    upstream._connections.discard(self.connection)
                with contextlib.suppress(OSError):
                    super().finish()

            def do_GET(self) -> None:
                upstream._serve(self)

            def do_POST(self) -> None:
                upstream._serve(self)

        server = _QuietServer((self.host, self.port), Handler)
        self._server = server
        self.url = f"http://{self.host}:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever, daemon=True, kwargs={"poll_interval": 0.05}
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close any open connection; returns promptly."""
        if self._server is None:
            return
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self.hold_before_last is not None:
            self.hold_before_last.set()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._server = None

    def open_connections(self) -> int:
        """How many client connections are open right now (kept-alive ones included)."""
        with self._lock:
            return len(self._connections)

    def handle(self, request: RecordedRequest, fault: Fault | None, responder: Responder) -> None:
        """Answer ``request`` in the vendor's format; stream faults are this method's to apply."""
        raise NotImplementedError

    def error_body(self, status: int, message: str) -> Any:
        """The vendor's JSON error body for an injected ``status``."""
        return {"error": {"message": message}}

    def wait_before_last(self) -> None:
        """Call before writing a stream's last content chunk (see ``hold_before_last``)."""
        if self.hold_before_last is not None:
            self.hold_before_last.wait(timeout=10)

    def send_whole(
        self,
        responder: Responder,
        fault: Fault | None,
        answer: Any,
        broken: bytes,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Send a whole (non-stream) JSON ``answer``, or what ``fault`` makes of it.

        ``broken`` is the vendor's answer cut short (a JSON prefix): the whole body for
        ``malformed``, the start of the never-ending body for ``endless``.
        """
        if fault is not None and fault.endless:
            send_endless(responder, broken, fault.stall_interval, headers)
        elif fault is not None and fault.malformed:
            responder.send_text(200, broken, "application/json", headers)
        else:
            responder.send_json(200, answer, headers)

    def stream_content(
        self,
        responder: Responder,
        fault: Fault | None,
        encoded: Sequence[bytes],
        events: StreamEvents,
    ) -> bool:
        """Write a stream's content events, one chunk each, applying ``fault``'s stream faults.

        Call after the preamble. True when every piece went out and the caller is to finish
        the stream (end marker, ``end_stream()``); False when a fault already ended it.
        """
        after_preamble(responder, fault, events)
        last = len(encoded) - 1
        for index, data in enumerate(encoded):
            if before_piece(responder, fault, index, events):
                return False
            if index == last:
                self.wait_before_last()
            responder.write_chunk(data)
            if index == last:
                self.last_chunk_sent.set()
        return not before_piece(responder, fault, len(encoded), events, past_end=True)

    def _next_fault(self) -> Fault | None:
        with self._lock:
            if self.faults:
                return self.faults.popleft()
        return self.fail_every_request

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        request = RecordedRequest(
            method=handler.command,
            path=handler.path,
            headers={name.lower(): value for name, value in handler.headers.items()},
            body=body,
        )
        with self._lock:
            self.requests.append(request)
        fault = self._next_fault()
        responder = Responder(
            handler,
            slow_headers=fault.slow_headers if fault is not None else 0.0,
            trickle=fault.trickle if fault is not None else 0.0,
            stopping=self.stopping,
        )
        try:
            if fault is not None:
                responder.pause(fault.delay)
            if fault is not None and fault.drop_on_connect:
                responder.drop()
            elif fault is not None and fault.html:
                responder.send_text(502, HTML_ERROR_PAGE, "text/html")
            elif fault is not None and fault.status is not None:
                if fault.body is not None:
                    responder.send_text(fault.status, fault.body, "application/json", fault.headers)
                else:
                    error = self.error_body(fault.status, f"injected HTTP {fault.status}")
                    responder.send_json(fault.status, error, fault.headers)
            else:
                self.handle(request, fault, responder)
        except OSError:
            # The client went away, the fake is stopping, or a fault broke the connection.
            handler.close_connection = True


class _QuietServer(ThreadingHTTPServer):
    """Threads per connection; connections the fake broke on purpose are not reported."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore connection errors (dropped on purpose); report anything else."""
        if not isinstance(sys.exc_info()[1], (OSError, ValueError)):
            super().handle_error(request, client_address)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def closed_port_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens: connections to it are refused."""
    return f"http://127.0.0.1:{free_port()}"
