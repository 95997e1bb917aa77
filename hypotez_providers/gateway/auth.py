"""Who may call the gateway: keys from ``[gateway]``, compared in constant time.

A key comes as ``Authorization: Bearer KEY`` (OpenAI's clients) or ``x-api-key: KEY``
(Anthropic's). With no keys configured every caller is let in; ``hypotez serve`` then binds to
a loopback address only. A refusal never repeats what the caller sent.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from .failures import Failure, Refused
from .settings import GatewaySettings, gateway_keys


class Authenticator:
    """Checks a request's key; knows which models each key may ask for."""

    def __init__(self, settings: GatewaySettings, environ: Mapping[str, str] | None = None) -> None:
        keys = gateway_keys(settings, environ)
        self._keys = [(key.encode(), models) for key, models in keys.items()]

    @property
    def open(self) -> bool:
        """Whether no key is configured (anyone may call)."""
        return not self._keys

    def check(self, environ: Mapping[str, Any], protocol: str = "openai") -> tuple[str, ...] | None:
        """The models the request's key may ask for (``None``: any), or :class:`Refused` 401."""
        if not self._keys:
            return None
        given = _presented(environ)
        if given is None:
            raise Refused(_unauthorized("no API key was sent", protocol))
        found: tuple[str, ...] | None = None
        matched = False
        for key, models in self._keys:  # every key compared: the time says nothing of which
            if hmac.compare_digest(given, key):
                matched, found = True, models
        if not matched:
            raise Refused(_unauthorized("the API key is not one the gateway accepts", protocol))
        return found


def _presented(environ: Mapping[str, Any]) -> bytes | None:
    header = environ.get("HTTP_AUTHORIZATION")
    if header:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return str(value).strip().encode("latin-1", "replace")
    key = environ.get("HTTP_X_API_KEY")
    if key and key.strip():
        return str(key).strip().encode("latin-1", "replace")
    return None


def _unauthorized(reason: str, protocol: str) -> Failure:
    how = "x-api-key: KEY" if protocol == "anthropic" else "Authorization: Bearer KEY"
    return Failure(
        401,
        "authentication",
        f"{reason}: send a gateway key as {how} (keys are set in [gateway] api_keys or "
        "HYPOTEZ_GATEWAY_API_KEYS)",
    )
