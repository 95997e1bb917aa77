"""The session every provider's transport uses: watched connections, environment read once.

requests reads the environment on every call (``HTTP(S)_PROXY``, ``NO_PROXY``,
``REQUESTS_CA_BUNDLE``, ...): about a tenth of a local call's time. A provider talks to one or
two origins for the life of its registry, so the answer is kept per origin and the same
arguments, with requests' own rules and precedence. A registry built afresh reads it again.
"""

from __future__ import annotations

import threading
from typing import Any

import requests

from ._deadline import WatchedAdapter

_MAX_ORIGINS = 64


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
