"""What a provider's hook receives besides the request: settings, address, key, HTTP client."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._settings_secrets import hide_userinfo, settings_secrets
from .redaction import redact, register_secret
from .tolerance import StreamStats
from .transport import HttpTransport

if TYPE_CHECKING:
    import requests

    from ._deadline import Watch
    from .provider_info import ProviderInfo
    from .settings import ProviderSettings


class ProviderContext:
    """One provider's effective settings and its pooled HTTP transport, shared by every call.

    ``repr()`` never shows the key; read ``api_key`` only to build a request header. Every
    secret of the settings (the key, a password in the base URL, a secret-looking unknown
    setting) is registered with the redactor when the context is made, and listed in ``secrets``.
    """

    __slots__ = ("info", "secrets", "settings", "stats", "transport")

    def __init__(self, info: ProviderInfo, settings: ProviderSettings) -> None:
        self.info = info
        self.settings = settings
        #: Counters a codec fills in while reading a stream (one per attempt under the Router).
        self.stats = StreamStats()
        #: The secrets of these settings (and of the provider's own address), as given.
        self.secrets: tuple[str, ...] = tuple(
            dict.fromkeys([*settings_secrets(settings), *settings_secrets(info)])
        )
        register_secret(*self.secrets)
        self.transport = HttpTransport(
            info.name,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.timeout,
            secrets=self.secrets,
            max_line=settings.max_line,
            max_body=settings.max_body,
        )

    def for_attempt(self, watch: Watch) -> ProviderContext:
        """A copy for one routed attempt: its transport obeys ``watch``, its stats are fresh."""
        copy = ProviderContext.__new__(ProviderContext)
        copy.info = self.info
        copy.secrets = self.secrets
        copy.settings = self.settings
        copy.stats = StreamStats()
        copy.transport = self.transport.for_attempt(watch)
        return copy

    def __repr__(self) -> str:
        shown = redact(hide_userinfo(self.base_url), self.secrets)
        return f"ProviderContext(name={self.name!r}, base_url={shown!r})"

    @property
    def name(self) -> str:
        """The provider's name."""
        return self.info.name

    @property
    def base_url(self) -> str:
        """The settings' ``base_url`` if given, else the provider's ``url``; no final '/'."""
        return (self.settings.base_url or self.info.url).rstrip("/")

    @property
    def api_key(self) -> str | None:
        """The API key in clear, or ``None``; never log it."""
        return self.settings.api_key_value

    @property
    def session(self) -> requests.Session:
        """The pooled :class:`requests.Session` of this provider's transport."""
        return self.transport.session
