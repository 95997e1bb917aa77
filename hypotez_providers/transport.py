"""HTTP for providers: one pooled ``requests`` session each, timeouts, streaming, typed errors.

Everything above this module deals in parsed data (JSON values, :class:`SSEEvent`), never in
sockets; every failure leaves here as a :class:`ProviderError` subclass naming the provider.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Generator, Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.exceptions

from ._body import ACCEPT_ENCODING, Undecodable, body_pieces, read_body, read_error_body
from ._deadline import Watch, watched_request
from ._error_body import describe_reason, error_message, html_title, looks_like_html, preview
from ._json import dumps
from ._session import ProviderSession
from .errors import (
    AuthenticationFailed,
    BadRequest,
    ConnectionFailed,
    ConnectionRefused,
    ContextLengthExceeded,
    MalformedResponse,
    NotFound,
    Overloaded,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    ServerError,
    redact,
)
from .limits import DEFAULT_MAX_BODY, DEFAULT_MAX_LINE, LimitExceeded
from .ndjson import BadLine, iter_ndjson
from .retry_after import parse_retry_after
from .sse import SSEDecoder, SSEEvent
from .tolerance import StreamStats, skip_malformed

Timeout = tuple[float, float]

#: Guards the creation of transports' sessions (rare: once per provider and registry).
_SESSION_LOCK = threading.Lock()

_CONTEXT_LENGTH = re.compile(
    r"context[_ ]length|maximum context|context window|prompt is too long|too many tokens", re.I
)


class HttpTransport:
    """One provider's HTTP client: a pooled session, connect/read timeouts and error mapping.

    ``secrets`` (the provider's API key) are scrubbed from every error message. The session is
    created on first use and shared by every call, including from several threads. A copy made
    by :meth:`for_attempt` carries one routed attempt's clocks: its reads are cut off when the
    call's deadline, the first-chunk limit or the idle limit passes, however the server trickles.

    Memory is bounded whatever the server sends (see :mod:`hypotez_providers.limits`): a stream
    line or event over ``max_line`` bytes, or a whole answer over ``max_body`` bytes (both
    counted after gzip or deflate decoding), is a :class:`MalformedResponse`. Redirects are
    not followed, so that no credential reaches another address: a 3xx answer is a
    :class:`MalformedResponse` naming where it pointed.
    """

    def __init__(
        self,
        provider: str,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        secrets: tuple[str, ...] = (),
        pool_size: int = 128,
        max_line: int = DEFAULT_MAX_LINE,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> None:
        self.provider = provider
        self.timeout: Timeout = (connect_timeout, read_timeout)
        #: Bytes: the longest stream line, or one event's data, read.
        self.max_line = max_line
        #: Bytes: the largest whole (non-stream) answer read, after content decoding.
        self.max_body = max_body
        self._secrets = secrets
        self._pool_size = pool_size
        self._session: ProviderSession | None = None
        #: The clocks of the routed attempt this copy serves (``None``: per-read timeouts only).
        self.watch: Watch | None = None

    def __repr__(self) -> str:
        return f"HttpTransport(provider={self.provider!r}, timeout={self.timeout!r})"

    @property
    def session(self) -> requests.Session:
        """The pooled :class:`requests.Session` (created on first use)."""
        return self._session or self._new_session()

    def _new_session(self) -> ProviderSession:
        # Threads meeting a cold provider share one session (and so one pool) between them.
        with _SESSION_LOCK:
            if self._session is None:
                session = ProviderSession(self._pool_size)
                # Only the codings read here with bounded memory (never br or zstd).
                session.headers["Accept-Encoding"] = ACCEPT_ENCODING
                self._session = session
            return self._session

    def with_timeout(self, connect: float, read: float) -> HttpTransport:
        """A copy with other timeouts that shares this transport's pooled session."""
        copy = HttpTransport.__new__(HttpTransport)
        copy.__dict__.update(self.__dict__)
        copy.timeout = (connect, read)
        copy._session = self._session or self._new_session()
        return copy

    def for_attempt(self, watch: Watch) -> HttpTransport:
        """A copy bound to one attempt's clocks that shares this transport's pooled session."""
        copy = self.with_timeout(*self.timeout)
        copy.watch = watch
        return copy

    def close(self) -> None:
        """Close the pooled connections."""
        if self._session is not None:
            self._session.close()
            self._session = None

    def post_json(
        self,
        url: str,
        payload: Any,
        *,
        headers: dict[str, str] | None = None,
        timeout: Timeout | None = None,
    ) -> Any:
        """POST ``payload`` as JSON and return the parsed JSON answer, or raise a ProviderError."""
        return self._whole("POST", url, payload, headers, timeout)

    def get_json(
        self, url: str, *, headers: dict[str, str] | None = None, timeout: Timeout | None = None
    ) -> Any:
        """GET ``url`` and return the parsed JSON answer, or raise a ProviderError."""
        return self._whole("GET", url, None, headers, timeout)

    def _whole(
        self,
        method: str,
        url: str,
        payload: Any,
        headers: dict[str, str] | None,
        timeout: Timeout | None,
    ) -> Any:
        response = self._send(method, url, payload, headers, timeout)
        with response:
            failed = response.status_code >= 400
            try:
                if failed:
                    content = read_error_body(response)
                else:
                    content = read_body(response, self.max_body)
            except (requests.RequestException, urllib3.exceptions.HTTPError) as error:
                raise self.translate(error, mid_stream=True) from None
            except (LimitExceeded, Undecodable) as error:
                raise self._unreadable(error) from None
            if self.watch is not None and self.watch.expired is not None:
                raise self.watch.error(self.provider)
        if failed:
            raise self.error_for(response.status_code, response.headers, content)
        return self._parse_json(content, response.headers.get("content-type", ""))

    def _send(
        self,
        method: str,
        url: str,
        payload: Any,
        headers: dict[str, str] | None,
        timeout: Timeout | None,
    ) -> requests.Response:
        """Send the request bound to this copy's watch; the body is left to read."""
        connect, read = timeout or self.timeout
        watch = self.watch
        if watch is not None:
            read = watch.read_timeout or read
            left = watch.until_deadline()
            if left is not None:
                # The reaper cuts a trickle; these end plain silence even without it.
                connect, read = min(connect, left + 0.05), min(read, left + 0.05)
        session: ProviderSession = self._session or self._new_session()
        body = None if payload is None else dumps(payload)
        # What requests' json= would send (Content-Type included), encoded faster.
        if (
            body is not None
            and "content-type" not in session.headers
            and not (headers and any(name.lower() == "content-type" for name in headers))
        ):
            headers = {**(headers or {}), "Content-Type": "application/json"}
        try:
            with watched_request(watch):
                if body is None and payload is not None:
                    # msgspec declined: requests' json= encodes it, and its error stands.
                    response = session.request(
                        method,
                        url,
                        json=payload,
                        headers=headers,
                        timeout=(connect, read),
                        stream=True,
                        allow_redirects=False,
                    )
                else:
                    response = session.send_bytes(method, url, body, headers, (connect, read))
        except (requests.RequestException, urllib3.exceptions.HTTPError) as error:
            raise self.translate(error) from None
        if 300 <= response.status_code < 400:
            response.close()
            raise self._redirected(response, url)
        return response

    def post_sse(
        self,
        url: str,
        payload: Any,
        *,
        headers: dict[str, str] | None = None,
        timeout: Timeout | None = None,
    ) -> Iterator[SSEEvent]:
        """POST ``payload`` and yield the server-sent events of the answer as they arrive.

        Nothing is sent until the first event is asked for. Stopping early closes the connection.
        """
        decoder = SSEDecoder(max_line=self.max_line)
        pieces = self._stream(url, payload, headers, timeout, "text/event-stream")
        with contextlib.closing(pieces):
            try:
                for piece in pieces:
                    yield from decoder.feed(piece)
            except LimitExceeded as error:
                raise self._unreadable(error) from None

    def post_ndjson(
        self,
        url: str,
        payload: Any,
        *,
        headers: dict[str, str] | None = None,
        timeout: Timeout | None = None,
        stats: StreamStats | None = None,
    ) -> Iterator[Any]:
        """POST ``payload`` and yield each JSON line of the answer as it arrives.

        A line that is not JSON is skipped and counted in ``stats`` (:func:`skip_malformed`);
        more than ``MAX_MALFORMED_IN_A_ROW`` of them in a row raise :class:`MalformedResponse`.
        """
        in_a_row = 0
        pieces = self._stream(url, payload, headers, timeout, "ndjson")
        with contextlib.closing(pieces):
            try:
                for value in iter_ndjson(pieces, max_line=self.max_line):
                    if type(value) is BadLine:
                        what = redact(str(value), self._secrets)
                        in_a_row = skip_malformed(self.provider, stats, in_a_row, what)
                    else:
                        in_a_row = 0
                        yield value
            except LimitExceeded as error:
                raise self._unreadable(error) from None

    def _stream(
        self,
        url: str,
        payload: Any,
        headers: dict[str, str] | None,
        timeout: Timeout | None,
        expected: str,
    ) -> Generator[bytes, None, None]:
        response = self._send("POST", url, payload, headers, timeout)
        with response:
            if response.status_code >= 400 or "html" in response.headers.get("content-type", ""):
                body = read_error_body(response)
                raise self.error_for(response.status_code, response.headers, body)
            try:
                yield from body_pieces(response)
            except (requests.RequestException, urllib3.exceptions.HTTPError) as error:
                raise self.translate(error, mid_stream=True) from None
            except Undecodable as error:
                raise self._unreadable(error) from None
            if self.watch is not None and self.watch.expired is not None:
                # The reaper's shutdown can look like a clean end of the body.
                raise self.watch.error(self.provider)

    def error_for(self, status: int, headers: Any, body: bytes) -> ProviderError:
        """Map an HTTP error answer to the matching :class:`ProviderError` subclass.

        Understands the error bodies of OpenAI, Anthropic and Ollama style APIs; an HTML page or
        a non-JSON body is reported as such. Plugins may call it for answers they read themselves.
        """
        message, kind = error_message(body, self._secrets)
        retry_after = parse_retry_after(headers)
        cls: type[ProviderError]
        if status < 400 and looks_like_html(body):
            cls = MalformedResponse
        elif kind == "overloaded_error" or status in (503, 529):
            cls = Overloaded
        elif status == 429:
            cls = RateLimited
        elif status in (401, 403):
            cls = AuthenticationFailed
        elif status == 404:
            cls = NotFound
        elif status == 408:
            cls = ProviderTimeout
        elif status in (400, 413, 422):
            cls = ContextLengthExceeded if _CONTEXT_LENGTH.search(message + kind) else BadRequest
        elif status >= 500:
            cls = ServerError
        else:
            cls = BadRequest
        return cls(self.provider, message, status=status, retry_after=retry_after)

    def _parse_json(self, content: bytes, content_type: str) -> Any:
        try:
            return json.loads(content)
        except ValueError:
            if looks_like_html(content) or "html" in content_type:
                what = f"an HTML page ({html_title(content)!r})"
            else:
                what = f"a body that is not JSON: {preview(content, self._secrets)!r}"
            raise MalformedResponse(
                self.provider, redact(f"expected JSON, got {what}", self._secrets), status=200
            ) from None

    def _unreadable(self, error: LimitExceeded | Undecodable) -> MalformedResponse:
        if isinstance(error, LimitExceeded):
            message = f"{error}: not read further (a larger limit is set on the transport)"
        else:
            message = str(error)
        return MalformedResponse(self.provider, redact(message, self._secrets), status=200)

    def _redirected(self, response: requests.Response, url: str) -> MalformedResponse:
        location = response.headers.get("location")
        if location:
            target = urlsplit(urljoin(url, location))
            # Only where it points: never the userinfo, query or fragment, which may hold a key.
            where = f"{target.scheme}://{target.netloc.rpartition('@')[2]}{target.path[:100]}"
            where += "..." if len(target.path) > 100 else ""
            what = f"redirected to {where}, not followed"
        else:
            what = "a redirect without a Location, not followed"
        return MalformedResponse(
            self.provider,
            redact(f"{what}: set base_url to the final address", self._secrets),
            status=response.status_code,
        )

    def translate(self, error: BaseException, *, mid_stream: bool = False) -> ProviderError:
        """Map a requests or urllib3 exception to ConnectionFailed or ProviderTimeout."""
        if self.watch is not None and self.watch.expired is not None:
            return self.watch.error(self.provider)
        cause = error.args[0] if error.args and isinstance(error.args[0], BaseException) else error
        connect, read = self.timeout
        if isinstance(error, requests.ConnectTimeout) or isinstance(
            cause, urllib3.exceptions.ConnectTimeoutError
        ):
            return ProviderTimeout(self.provider, f"no connection within {connect:g}s")
        if isinstance(
            error, (requests.ReadTimeout, urllib3.exceptions.ReadTimeoutError)
        ) or isinstance(cause, urllib3.exceptions.ReadTimeoutError):
            when = "mid-stream" if mid_stream else "waiting for the answer"
            return ProviderTimeout(self.provider, f"nothing received for {read:g}s {when}")
        if mid_stream:
            return ConnectionFailed(self.provider, "the connection broke mid-stream")
        reason = describe_reason(error, self._secrets)
        if reason == "connection refused":
            return ConnectionRefused(self.provider, reason)
        return ConnectionFailed(self.provider, redact(reason, self._secrets))
