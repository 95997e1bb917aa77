"""The gateway's WSGI application: authenticate, bound, translate, route, answer.

Every request takes the same path: find the route, check the key (:mod:`.auth`), take one of
the worker's call slots (none left: 503 at once, never an unbounded queue), read a bounded
body, let the protocol's wire module (:mod:`.openai_wire`, :mod:`.anthropic_wire`) make it a
:class:`~.call.GatewayCall`, and ask the router. A stream is only answered ``200`` once its
first chunk is in hand, so a failure before it gets a real status code; a failure after it
ends the stream with the protocol's in-band error event.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..errors import HypotezError, InvalidInput
from ..redaction import logger_for
from ..router import Router
from .auth import Authenticator
from .call import GatewayCall
from .dialects import ANTHROPIC, OPENAI, Dialect
from .failures import Failure, Refused, failure_for
from .openai_wire import encode as _encode
from .openai_wire import models_body
from .relay import Relay
from .settings import GatewaySettings

if TYPE_CHECKING:
    from .metrics import GatewayMetrics

logger = logger_for("hypotez_providers.gateway")

StartResponse = Callable[..., Any]
Environ = dict[str, Any]
_JSON = ("Content-Type", "application/json")
_SSE_HEADERS = [
    ("Content-Type", "text/event-stream; charset=utf-8"),
    ("Cache-Control", "no-cache"),
    ("X-Accel-Buffering", "no"),
]
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class GatewayApp:
    """The WSGI application serving the router over OpenAI's and Anthropic's HTTP APIs.

    ``settings`` default to the registry's ``[gateway]`` table; ``metrics`` (optional) counts
    calls and exposes ``GET /metrics``.
    """

    def __init__(
        self,
        router: Router,
        *,
        settings: GatewaySettings | None = None,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self.router = router
        self.settings = settings or router.registry.settings.gateway
        self.metrics = metrics
        self._auth = Authenticator(self.settings)
        self._slots = threading.BoundedSemaphore(self.settings.max_concurrency)
        self._routes: dict[tuple[str, str], Callable[[Environ, StartResponse], Iterable[bytes]]]
        self._routes = {
            ("POST", "/v1/chat/completions"): self._openai_chat,
            ("POST", "/v1/messages"): self._anthropic_messages,
            ("GET", "/v1/models"): self._models,
            ("GET", "/health"): self._health,
            ("GET", "/health/providers"): self._providers_health,
            ("GET", "/metrics"): self._metrics,
        }
        self._paths = {path for _, path in self._routes}

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """Serve one request (the WSGI entry point)."""
        path = environ.get("PATH_INFO") or "/"
        if len(path) > 1:
            path = path.rstrip("/")
        dialect = ANTHROPIC if path == "/v1/messages" else OPENAI
        handler = self._routes.get((environ.get("REQUEST_METHOD", "GET"), path))
        try:
            if handler is None:
                raise Refused(self._no_route(environ, path))
            return handler(environ, start_response)
        except Refused as refused:
            failure = refused.failure
            level = logging.WARNING if failure.status >= 500 else logging.INFO
            logger.log(
                level,
                "%s %s: %d %s",
                environ.get("REQUEST_METHOD"),
                path,
                failure.status,
                failure.message,
            )
            return _error(start_response, dialect, failure)
        except Exception:
            logger.exception("internal error serving %s", path)
            failure = Failure(500, "internal", "internal error in the gateway; see its log")
            return _error(start_response, dialect, failure)

    # -- routes ------------------------------------------------------------------------------

    def _openai_chat(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        return self._answer(OPENAI, environ, start_response)

    def _anthropic_messages(
        self, environ: Environ, start_response: StartResponse
    ) -> Iterable[bytes]:
        return self._answer(ANTHROPIC, environ, start_response)

    def _models(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        allowed = self._auth.check(environ)
        registry = self.router.registry
        served: list[tuple[str, str]] = []
        for provider in registry.providers():
            served.extend((model, provider.name) for model in provider.models)
        served.extend((alias, "alias") for alias in registry.settings.aliases)
        seen: set[str] = set()
        listed = []
        for model, owner in served:
            if model not in seen and (allowed is None or model in allowed):
                seen.add(model)
                listed.append((model, owner))
        return _json(start_response, 200, models_body(listed))

    def _health(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        return _json(start_response, 200, {"status": "ok"})

    def _providers_health(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        self._auth.check(environ)
        health = [entry.model_dump(mode="json") for entry in self.router.health()]
        return _json(start_response, 200, {"providers": health})

    def _metrics(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        self._auth.check(environ)
        if self.metrics is None:
            raise Refused(Failure(404, "not_found", "metrics are off: install prometheus-client"))
        body, content_type = self.metrics.render()
        start_response("200 OK", [("Content-Type", content_type)])
        return [body]

    def _no_route(self, environ: Environ, path: str) -> Failure:
        if path in self._paths:
            method = environ.get("REQUEST_METHOD")
            return Failure(405, "invalid_request", f"{method} is not allowed on {path}")
        known = ", ".join(sorted(self._paths))
        return Failure(404, "not_found", f"no route {path!r}: the gateway serves {known}")

    # -- a call ------------------------------------------------------------------------------

    def _answer(
        self, dialect: Dialect, environ: Environ, start_response: StartResponse
    ) -> Iterable[bytes]:
        allowed = self._auth.check(environ, dialect.name)
        body = self._read_json(environ)
        try:
            call = dialect.parse(body)
        except InvalidInput as error:
            raise Refused(failure_for(error)) from None
        if allowed is not None and call.model not in allowed:
            raise Refused(
                Failure(
                    403,
                    "permission",
                    f"this key may not ask for model {call.model!r}; it may ask for "
                    f"{', '.join(allowed)}",
                    "model",
                )
            )
        timeout = self._timeout(environ)
        if not self._slots.acquire(blocking=False):
            if self.metrics is not None:
                self.metrics.shed(dialect.name)
            raise Refused(
                Failure(
                    503,
                    "overloaded",
                    f"the gateway is serving its limit of {self.settings.max_concurrency} "
                    "calls at once; retry shortly",
                    retry_after=1.0,
                )
            )
        token = self.metrics.call_started(dialect.name, call.stream) if self.metrics else None
        handed_over = False
        outcome = "error"
        try:
            if call.stream:
                body_iter = self._stream(dialect, call, timeout, token, start_response)
                handed_over = True
                return body_iter
            completion = self.router.complete(
                call.model, call.messages, timeout=timeout, **call.options
            )
            answer = _encode(dialect.whole(completion, call))
            start_response(
                "200 OK",
                [_JSON, *_provider_headers(completion.provider, len(completion.attempts))],
            )
            outcome = "ok"
            return [answer]
        except HypotezError as error:
            raise Refused(failure_for(error)) from None
        finally:
            if not handed_over:
                self._slots.release()
                if self.metrics is not None:
                    self.metrics.call_finished(token, outcome)

    def _stream(
        self,
        dialect: Dialect,
        call: GatewayCall,
        timeout: float,
        token: object,
        start_response: StartResponse,
    ) -> Iterable[bytes]:
        stream = self.router.stream(call.model, call.messages, timeout=timeout, **call.options)
        try:
            first = next(stream, None)  # failover happens before this returns
        except BaseException:
            stream.close()
            raise
        encoder = dialect.streamer(call)
        body = Relay(stream, first, encoder, self._stream_ended(token))
        start_response(
            "200 OK",
            [*_SSE_HEADERS, *_provider_headers(stream.provider, len(stream.attempts))],
        )
        return body

    def _stream_ended(self, token: object) -> Callable[[str], None]:
        def ended(outcome: str) -> None:
            self._slots.release()
            if self.metrics is not None:
                self.metrics.call_finished(token, outcome)

        return ended

    def _read_json(self, environ: Environ) -> object:
        limit = self.settings.max_body
        length = environ.get("CONTENT_LENGTH") or ""
        try:
            size = int(length) if length else None
        except ValueError:
            failure = Failure(400, "invalid_request", "Content-Length is not a number")
            raise Refused(failure) from None
        if size is not None and size > limit:
            raise Refused(_too_large(limit))
        data = environ["wsgi.input"].read(limit + 1 if size is None else size)
        if len(data) > limit:
            raise Refused(_too_large(limit))
        try:
            return json.loads(data)
        except ValueError as error:
            message = f"the request body is not JSON: {error}"
            raise Refused(Failure(400, "invalid_request", message, "body")) from None

    def _timeout(self, environ: Environ) -> float:
        """The call's timeout: the client's header, at most ``max_timeout``; else the default.

        ``X-Hypotez-Timeout`` must be a positive number of seconds. The official SDKs send
        their own timeout as ``X-Stainless-Timeout``; it is honoured when it is a number and
        ignored otherwise (some versions send ``NOT_GIVEN``).
        """
        ours = environ.get("HTTP_X_HYPOTEZ_TIMEOUT")
        if ours is not None:
            seconds = _seconds(ours)
            if seconds is None:
                message = f"x-hypotez-timeout: give a positive number of seconds, not {ours[:20]!r}"
                raise Refused(Failure(400, "invalid_request", message, "x-hypotez-timeout"))
            return min(seconds, self.settings.max_timeout)
        sdk = _seconds(environ.get("HTTP_X_STAINLESS_TIMEOUT") or "")
        if sdk is not None:
            return min(sdk, self.settings.max_timeout)
        return self.settings.timeout


def _seconds(value: str) -> float | None:
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 < seconds < float("inf") else None


def _too_large(limit: int) -> Failure:
    return Failure(
        413,
        "too_large",
        f"the request body is over the gateway's limit of {limit} bytes "
        "(raise [gateway] max_body to accept more)",
    )


def _provider_headers(provider: str | None, attempts: int) -> list[tuple[str, str]]:
    return [("X-Hypotez-Provider", provider or ""), ("X-Hypotez-Attempts", str(attempts))]


def _json(start_response: StartResponse, status: int, body: object) -> list[bytes]:
    start_response(f"{status} {_REASONS.get(status, 'Error')}", [_JSON])
    return [_encode(body)]


def _error(start_response: StartResponse, dialect: Dialect, failure: Failure) -> list[bytes]:
    headers = [_JSON]
    if failure.retry_after is not None:
        headers.append(("Retry-After", str(max(1, round(failure.retry_after)))))
    if failure.status == 401:
        headers.append(("WWW-Authenticate", "Bearer"))
    start_response(f"{failure.status} {_REASONS.get(failure.status, 'Error')}", headers)
    return [_encode(dialect.error(failure))]


__all__ = ["GatewayApp"]
