"""The ``[state]`` settings table: where circuits (and later rate limits) are shared.

::

    [state]
    url = "redis://redis.internal:6379/0"   # or HYPOTEZ_STATE_URL, which wins over the file
    namespace = "hypotez"                   # prefix of every key
    timeout = 0.05                          # seconds any Redis operation may take
    fresh_for = 0.25                        # seconds a healthy circuit is trusted unasked

Without a URL every process keeps its own state in memory. The URL is kept as a secret: its
password never shows in reprs, errors or logs (:func:`masked_url` shows the rest of it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from .connection import masked_url

#: The environment variable naming the shared store; it wins over ``[state] url``.
URL_ENV = "HYPOTEZ_STATE_URL"
_SCHEMES = ("redis://", "rediss://", "unix://")


class StateSettings(BaseModel):
    """The ``[state]`` table (see the module docs); every field has a default."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    url: SecretStr | None = Field(
        None, description="redis://[:password@]host:port/db; none keeps state in memory."
    )
    namespace: str = Field(
        "hypotez", min_length=1, pattern=r"^[A-Za-z0-9_.-]+$", description="Key prefix."
    )
    timeout: float = Field(
        0.05, gt=0, le=5, allow_inf_nan=False, description="Seconds a Redis operation may take."
    )

    fresh_for: float = Field(
        0.25,
        ge=0,
        le=60,
        allow_inf_nan=False,
        description=(
            "Seconds a process admits calls to a provider it last saw healthy without asking "
            "Redis (a circuit another process opens is honoured up to this late); 0: always ask."
        ),
    )

    @field_validator("url")
    @classmethod
    def _redis_url(cls, url: SecretStr | None) -> SecretStr | None:
        if url is not None and not url.get_secret_value().startswith(_SCHEMES):
            raise ValueError("the state url must start with redis://, rediss:// or unix://")
        return url

    def effective_url(self, environ: Mapping[str, str] | None = None) -> str | None:
        """``HYPOTEZ_STATE_URL`` if set, else ``url``: the secret value, never to be shown."""
        environ = os.environ if environ is None else environ
        from_env = environ.get(URL_ENV)
        if from_env:
            return from_env
        return self.url.get_secret_value() if self.url is not None else None

    def shown_url(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The effective URL with its password masked, for listings and messages."""
        url = self.effective_url(environ)
        return masked_url(url) if url is not None else None
