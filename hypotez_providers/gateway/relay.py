"""A streamed answer's body: read on its own thread, written to the client in batches.

The server writes each piece the application yields with one ``send``; one per event would
make the socket, not the router, the limit. So a pump thread reads the routed stream and
encodes each chunk, and the server's thread takes *everything encoded so far* as one piece:
while one batch is being written the next accumulates, and a slow trickle still goes out
event by event, as soon as it arrives. The queue between them is bounded, so a slow client
holds the upstream back instead of filling memory.

A client that goes away makes the server close the body: the pump stops at the next chunk,
closes the upstream stream (its connection is not reused half read), and the call's slot is
released exactly once, when the pump has finished.
"""

from __future__ import annotations

import contextlib
import contextvars
import queue
import threading
from collections.abc import Callable, Iterator

from ..errors import HypotezError
from ..redaction import logger_for
from ..results import Chunk
from ..routed_stream import RoutedStream
from .dialects import Encoder
from .failures import Failure, failure_for

logger = logger_for("hypotez_providers.gateway")

#: Encoded events waiting for the client, at most (each is one chunk's events).
MAX_PENDING = 256
_END = b""


class Relay:
    """The WSGI body of one stream: iterate it for batches of events; ``close()`` stops it.

    ``first`` is the first chunk, already received (``None``: the answer is empty); ``ended``
    is called once with the outcome (``"ok"``, ``"error"`` or ``"disconnected"``) after the
    upstream stream is closed.
    """

    def __init__(
        self,
        stream: RoutedStream,
        first: Chunk | None,
        encoder: Encoder,
        ended: Callable[[str], None],
    ) -> None:
        self._stream = stream
        self._encoder = encoder
        self._ended = ended
        self._pending: queue.Queue[bytes] = queue.Queue(MAX_PENDING)
        self._stopped = threading.Event()
        head = encoder.start()
        if first is not None:
            head += encoder.feed(first)
        self._head = head
        self._outcome = "disconnected"
        self._context = contextvars.copy_context()  # the call's metrics labels follow the pump
        self._started = False

    def __iter__(self) -> Iterator[bytes]:
        yield self._head  # the first byte goes out before the pump thread is started
        self._started = True
        threading.Thread(
            target=self._context.run, args=(self._read,), name="hypotez-relay", daemon=True
        ).start()
        pending = self._pending
        while True:
            batch = [pending.get()]
            while batch[-1] is not _END:
                try:
                    batch.append(pending.get_nowait())
                except queue.Empty:
                    break
            if batch[-1] is _END:
                batch.pop()
                if batch:
                    yield b"".join(batch)
                return
            yield b"".join(batch)

    def close(self) -> None:
        """Stop relaying (the client is gone, or the body is done); the pump ends the call."""
        if not self._started:  # never iterated past the head: no pump to end the call
            self._started = True
            try:
                self._stream.close()
            finally:
                self._ended("disconnected")
            return
        self._stopped.set()
        with contextlib.suppress(queue.Empty):
            while True:  # unblock a pump waiting for room
                self._pending.get_nowait()

    def _read(self) -> None:
        encoder, put, stopped = self._encoder, self._pending.put, self._stopped
        try:
            for chunk in self._stream:
                data = encoder.feed(chunk)
                if data:
                    put(data)
                if stopped.is_set():
                    return
            put(encoder.finish())
            self._outcome = "ok"
        except HypotezError as error:
            self._outcome = "error"
            self._offer(encoder.error(failure_for(error)))
        except Exception:
            logger.exception("internal error in a stream")
            self._outcome = "error"
            self._offer(encoder.error(Failure(500, "internal", "internal error in the gateway")))
        finally:
            try:
                self._stream.close()
            finally:
                outcome = self._outcome  # decided before the client can see the end
                self._offer(_END)
                self._ended(outcome)

    def _offer(self, data: bytes) -> None:
        """Queue ``data`` unless the client is gone (never blocks a finished pump for long)."""
        while not self._stopped.is_set():
            with contextlib.suppress(queue.Full):
                self._pending.put(data, timeout=0.1)
                return
