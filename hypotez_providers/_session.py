"""The session every provider's transport uses: watched connections, environment read once.

requests reads the environment on every call (``HTTP(S)_PROXY``, ``NO_PROXY``,
``REQUESTS_CA_BUNDLE``, ``~/.netrc``, ...) and prepares every request from scratch (merging
the session's headers, parsing the URL, building the cookie header): together about a fifth of
a local call's time. A provider talks to one or two origins with the same headers for the life
of its registry, so :meth:`ProviderSession.send_bytes` keeps the prepared request per method,
URL and headers, made by requests' own code once, and sets only the body and its length on a
copy. A registry built afresh reads everything again.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from time import perf_counter
from typing import Any

import requests
from requests.cookies import extract_cookies_to_jar
from requests.structures import CaseInsensitiveDict

from ._deadline import WatchedAdapter

_MAX_ORIGINS = 64
_MAX_TEMPLATES = 256


class _Template:
    """A request prepared by requests once, with what sending it needs (internal)."""

    __slots__ = ("adapter", "prepared", "send_settings", "session_headers", "sized")

    def __init__(self, session: ProviderSession, prepared: requests.PreparedRequest) -> None:
        self.prepared = prepared
        #: Whether a body's ``Content-Length`` is set per call (a POST with a body).
        self.sized = "content-length" in prepared.headers
        self.adapter = session.get_adapter(prepared.url or "")
        settings = session.merge_environment_settings(prepared.url, {}, True, None, None)
        self.send_settings: dict[str, Any] = dict(settings)
        # The session's own headers when it was made: a change to them makes it stale.
        self.session_headers = session.headers._store.copy()  # type: ignore[attr-defined]


class ProviderSession(requests.Session):
    """A :class:`requests.Session` with interruptible connections and a per-origin env cache.

    It never follows a redirect, even for a plugin that sends with ``context.session`` itself:
    the 3xx answer is returned as it is, so no key or header travels to another origin.
    """

    def __init__(self, pool_size: int) -> None:
        super().__init__()
        adapter = WatchedAdapter(pool_connections=4, pool_maxsize=pool_size)
        self.mount("http://", adapter)
        self.mount("https://", adapter)
        self._environment: dict[tuple[Any, ...], Any] = {}
        self._environment_lock = threading.Lock()
        self._templates: dict[tuple[Any, ...], _Template] = {}

    def __setattr__(self, name: str, value: Any) -> None:
        # Any setting changed (verify, cert, auth, headers, trust_env, ...): prepare afresh.
        object.__setattr__(self, name, value)
        if not name.startswith("_"):
            self.__dict__["_templates"] = {}

    def mount(self, prefix: Any, adapter: Any) -> None:
        """Mount ``adapter`` as requests does; requests prepared before are prepared again."""
        super().mount(prefix, adapter)
        self.__dict__["_templates"] = {}

    def send_bytes(
        self,
        method: str,
        url: str,
        body: bytes | None,
        headers: dict[str, str] | None,
        timeout: tuple[float, float],
    ) -> requests.Response:
        """Send ``body`` as ``request(..., data=body, stream=True, allow_redirects=False)`` would.

        The request is prepared once per method, URL and headers, by requests itself. The bytes
        sent are the same; so are the proxies, ``NO_PROXY``, netrc, TLS settings and cookies
        that apply. Whatever the fast path cannot reproduce exactly (cookies in the jar,
        session-wide auth, params, proxies or hooks, an empty body) goes through
        :meth:`request` itself.
        """
        if (
            (body is not None and (type(body) is not bytes or not body))
            or self.auth is not None
            or self.params
            or self.proxies
            or any(self.hooks.values())
            or type(self.headers) is not CaseInsensitiveDict
            or len(self.cookies)
        ):
            return self.request(
                method,
                url,
                data=body,
                headers=headers,
                timeout=timeout,
                stream=True,
                allow_redirects=False,
            )
        key = (method, url, body is None, tuple(headers.items()) if headers else None)
        template = self._templates.get(key)
        if template is None or template.session_headers != self.headers._store:  # type: ignore[attr-defined]
            template = self._template(key, method, url, body, headers)
        shape = template.prepared
        prepared = requests.PreparedRequest()
        prepared.method = shape.method
        prepared.url = shape.url
        prepared.hooks = shape.hooks
        prepared._cookies = shape._cookies  # type: ignore[attr-defined]
        fields = CaseInsensitiveDict.__new__(CaseInsensitiveDict)
        fields._store = shape.headers._store.copy()  # type: ignore[attr-defined]
        if body is not None and template.sized:
            # Its place among the headers stays the one requests gave it.
            fields._store["content-length"] = ("Content-Length", str(len(body)))  # type: ignore[attr-defined]
        prepared.headers = fields
        prepared.body = body
        started = perf_counter()
        response: requests.Response = template.adapter.send(
            prepared, timeout=timeout, **template.send_settings
        )
        response.elapsed = timedelta(seconds=perf_counter() - started)
        found = response.headers
        if "set-cookie" in found or "set-cookie2" in found:
            extract_cookies_to_jar(self.cookies, prepared, response.raw)  # type: ignore[no-untyped-call]
        return response

    def _template(
        self,
        key: tuple[Any, ...],
        method: str,
        url: str,
        body: bytes | None,
        headers: dict[str, str] | None,
    ) -> _Template:
        # A one-byte stand-in body: requests then gives Content-Length its place.
        request = requests.Request(
            method=method.upper(),
            url=url,
            headers=headers,
            data=b"-" if body is not None else {},
            params={},
        )
        template = _Template(self, self.prepare_request(request))
        templates = self._templates
        if len(templates) >= _MAX_TEMPLATES:
            templates.clear()
        templates[key] = template
        return template

    def merge_environment_settings(
        self,
        url: Any,
        proxies: Any,
        stream: Any,
        verify: Any,
        cert: Any,
    ) -> Any:  # requests' private _Settings TypedDict in its stubs
        """Requests merging the call with the environment (proxies, CA bundle), per origin."""
        if not self.trust_env or not isinstance(url, str):
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        origin = url.split("/", 3)[:3]
        key = (
            tuple(origin),
            tuple(sorted(proxies.items())) if proxies else None,
            stream,
            verify if isinstance(verify, (bool, str)) or verify is None else id(verify),
            cert if isinstance(cert, (str, tuple)) or cert is None else id(cert),
        )
        merged: Any = self._environment.get(key)
        if merged is None:
            merged = super().merge_environment_settings(
                url, dict(proxies or {}), stream, verify, cert
            )
            with self._environment_lock:
                if len(self._environment) >= _MAX_ORIGINS:
                    self._environment.clear()
                self._environment[key] = merged
        # Callers may change what they are given: each gets its own copy of the proxies.
        return {**merged, "proxies": dict(merged["proxies"])}

    def resolve_redirects(self, resp: Any, req: Any, *args: Any, **kwargs: Any) -> Any:
        """Follow nothing: a provider's credentials stay with the provider's own origin."""
        return iter(())
