"""The vendor-neutral part of a fake upstream: a threaded HTTP/1.1 server with fault injection.

A vendor's fake subclasses :class:`FakeUpstream` and implements :meth:`FakeUpstream.handle`,
writing its wire format through a :class:`Responder`; it never touches a socket itself.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HTML_ERROR_PAGE = (
    "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1>"
    "</center><hr><center>nginx</center></body></html>"
)


@dataclass(frozen=True)
class Fault:
    """What to do wrong on one request. Every field off means: answer normally.

    ``delay`` seconds of silence before anything is sent (a slow first byte);
    ``drop_on_connect`` closes the connection without an answer; ``status`` answers with that
    HTTP status (``headers`` and ``body`` as given, else the vendor's error body); ``html``
    answers 502 with an nginx error page. Stream faults: ``drop_after`` content chunks then the
    connection breaks; ``truncate_after`` chunks then the body ends cleanly with no end marker;
    ``error_event_after`` chunks then a vendor error event; ``malformed`` sends broken JSON.
    """

    delay: float = 0.0
    drop_on_connect: bool = False
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | str | None = None
    html: bool = False
    drop_after: int | None = None
    truncate_after: int | None = None
    error_event_after: int | None = None
    malformed: bool = False


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
    """Writes one HTTP answer: whole (``send_json``/``send_text``) or streamed in chunks."""

    def __init__(self, handler: BaseHTTPRequestHandler) -> None:
        self._handler = handler

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
        handler = self._handler
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)
        handler.wfile.flush()

    def start_stream(
        self, content_type: str, status: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        """Send the headers of a chunked (streamed) answer."""
        handler = self._handler
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.send_header("Cache-Control", "no-cache")
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.flush()

    def write_chunk(self, data: bytes) -> None:
        """Send ``data`` as one HTTP chunk, at once."""
        self._handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self._handler.wfile.flush()

    def end_stream(self) -> None:
        """End the chunked body properly."""
        self._handler.wfile.write(b"0\r\n\r\n")
        self._handler.wfile.flush()

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


class FakeUpstream:
    """A local HTTP server on 127.0.0.1 whose answers a subclass defines, with injectable faults.

    Use as a context manager (or ``start()``/``stop()``); ``url`` is its base URL. ``faults``
    is consumed one per request, first in first out; ``fail_every_request`` applies to all.
    ``requests`` records what arrived. For streams, set ``hold_before_last`` to an Event to
    make the server wait for it before the last content chunk; ``last_chunk_sent`` is set once
    that chunk is written.
    """

    def __init__(self) -> None:
        self.faults: deque[Fault] = deque()
        self.fail_every_request: Fault | None = None
        self.requests: list[RecordedRequest] = []
        self.hold_before_last: threading.Event | None = None
        self.last_chunk_sent = threading.Event()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self.url = ""

    def __enter__(self) -> FakeUpstream:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start serving in a background thread."""
        upstream = self

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

        server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever, daemon=True, kwargs={"poll_interval": 0.05}
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close any open connection; returns promptly."""
        if self._server is None:
            return
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
        responder = Responder(handler)
        try:
            if fault is not None and fault.delay:
                time.sleep(fault.delay)
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
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True


class _QuietServer(ThreadingHTTPServer):
    """Threads per connection; connections the fake broke on purpose are not reported."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore connection errors (dropped on purpose); report anything else."""
        if not isinstance(sys.exc_info()[1], (OSError, ValueError)):
            super().handle_error(request, client_address)


def cut_stream(
    responder: Responder,
    fault: Fault | None,
    sent: int,
    error_event: bytes,
    *,
    past_end: bool = False,
) -> bool:
    """Apply the stream fault due after ``sent`` content chunks; True when the stream ended.

    ``error_event`` is the vendor's mid-stream error, written for ``error_event_after``.
    ``past_end``: every piece was sent, so a fault counting more chunks applies now.
    """
    if fault is None:
        return False

    def due(after: int | None) -> bool:
        return after is not None and (after == sent or (past_end and after > sent))

    if due(fault.drop_after):
        responder.drop()
    elif due(fault.truncate_after):
        responder.end_stream()
    elif due(fault.error_event_after):
        responder.write_chunk(error_event)
        responder.end_stream()
    else:
        return False
    return True


def closed_port_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens: connections to it are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"
