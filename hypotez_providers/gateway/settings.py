"""The ``[gateway]`` settings table: who may call ``hypotez serve`` and within which limits.

::

    [gateway]
    api_keys = ["gw-team-a-..."]          # or HYPOTEZ_GATEWAY_API_KEYS="k1,k2" in the environment
    max_concurrency = 64                  # calls at once per worker; more are shed with 503
    max_body = 16_777_216                 # bytes
    timeout = 300                         # seconds per call when the client sets none
    max_timeout = 600                     # the most a client's timeout header may ask

    [[gateway.clients]]                   # a key limited to some models (and aliases)
    name = "notebooks"
    key = "gw-notebooks-..."
    models = ["fast", "gpt-4o-mini"]
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from ..errors import ConfigError
from ..provider_settings import MAX_SECONDS, ApiKey, secret_problem

#: The environment variable holding gateway keys, comma-separated (added to the settings').
KEYS_ENV = "HYPOTEZ_GATEWAY_API_KEYS"


class GatewayClient(BaseModel):
    """A client key that may only ask for ``models`` (model names or aliases)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    name: str = Field(min_length=1, description="Shown in logs and errors, never the key.")
    key: ApiKey
    models: tuple[str, ...] = Field(min_length=1, description="What this key may ask for.")


class GatewaySettings(BaseModel):
    """The ``[gateway]`` table (see the module docs); every field has a default."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    api_keys: tuple[ApiKey, ...] = Field((), description="Keys that may ask for any model.")
    clients: tuple[GatewayClient, ...] = Field((), description="Keys limited to some models.")
    max_concurrency: int = Field(64, ge=1, le=10_000, description="Calls at once per worker.")
    max_body: int = Field(16 * 1024 * 1024, ge=1024, description="Largest request body, bytes.")
    timeout: float = Field(300.0, gt=0, le=MAX_SECONDS, allow_inf_nan=False)
    max_timeout: float = Field(600.0, gt=0, le=MAX_SECONDS, allow_inf_nan=False)
    graceful_timeout: float = Field(
        30.0, gt=0, le=MAX_SECONDS, allow_inf_nan=False, description="Shutdown waits this long."
    )


def gateway_keys(
    settings: GatewaySettings, environ: Mapping[str, str] | None = None
) -> dict[str, tuple[str, ...] | None]:
    """Every accepted key with the models it may ask for (``None``: any model).

    Keys come from the settings and from :data:`KEYS_ENV`. Raises :class:`ConfigError` naming
    the variable (never the key) when one has whitespace or control characters around it.
    """
    environ = os.environ if environ is None else environ
    keys: dict[str, tuple[str, ...] | None] = {}
    for client in settings.clients:
        keys[client.key.get_secret_value()] = client.models
    for key in settings.api_keys:
        keys[key.get_secret_value()] = None
    for number, value in enumerate(environ.get(KEYS_ENV, "").split(","), 1):
        if not value.strip():
            continue
        problem = secret_problem(value)
        if problem:
            raise ConfigError(f"{KEYS_ENV}: key number {number} {problem}", key=KEYS_ENV)
        keys[value] = None
    return keys


__all__ = ["KEYS_ENV", "GatewayClient", "GatewaySettings", "gateway_keys"]
