"""The settings of one provider or endpoint, and the retry policy: the tables of the file.

Each model validates its own table strictly (see :mod:`hypotez_providers.settings` for the file
as a whole, and where it is read from).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
)

from ._settings_secrets import redacted_repr_args
from .limits import DEFAULT_MAX_BODY, DEFAULT_MAX_LINE
from .urls import check_base_url

#: The longest number of seconds a setting may give: a day. Longer overflows the platform's
#: timers (``socket.settimeout(1e300)`` raises), so it is refused at load, not at the first call.
MAX_SECONDS = 86400.0
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def secret_problem(value: str) -> str | None:
    """Why ``value`` cannot be a key or header value, or ``None``; never repeats the value.

    Whitespace around it (a trailing newline from ``$(cat key.txt)``) or a control character
    anywhere would be sent as part of the key, or make the HTTP library refuse the header in
    a message that shows it.
    """
    if value != value.strip():
        return (
            "has whitespace or a line break at its start or end "
            "(a trailing newline from `$(cat key.txt)`?): remove it"
        )
    if not value.isprintable():
        return "contains a control character: remove it"
    return None


def _checked_key(key: SecretStr) -> SecretStr:
    problem = secret_problem(key.get_secret_value())
    if problem:
        raise ValueError(f"the key {problem}")
    return key


#: A key read from the settings: no whitespace around it, no control characters in it.
ApiKey = Annotated[SecretStr, AfterValidator(_checked_key)]
#: A provider's address: http or https, with a host, no fragment (see :func:`check_base_url`).
BaseUrl = Annotated[str, AfterValidator(check_base_url)]


def _named(names: tuple[str, ...]) -> tuple[str, ...]:
    if not names:
        raise ValueError("lists nothing: give at least one name")
    if any(not name.strip() for name in names):
        raise ValueError("lists an empty name")
    return names


#: An alias's targets or a route's providers: at least one, none empty.
Names = Annotated[tuple[str, ...], AfterValidator(_named)]


class RetryPolicy(BaseModel):
    """How a routed call retries a provider's transient failures before moving on.

    Waits grow exponentially from ``initial_backoff`` up to ``max_backoff`` seconds, with up to
    ``jitter`` seconds added at random, and are never shorter than the provider's Retry-After
    (a Retry-After over ``max_retry_after`` is not waited out: the next provider is tried).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    attempts: int = Field(2, ge=1, description="Tries per provider, the first included.")
    initial_backoff: float = Field(0.25, ge=0, le=MAX_SECONDS, allow_inf_nan=False)
    max_backoff: float = Field(4.0, ge=0, le=MAX_SECONDS, allow_inf_nan=False)
    jitter: float = Field(0.25, ge=0, le=MAX_SECONDS, allow_inf_nan=False)
    max_retry_after: float = Field(
        30.0,
        ge=0,
        le=MAX_SECONDS,
        allow_inf_nan=False,
        description="Longest Retry-After waited out in place; a longer ask moves to the next "
        "provider (and opens this one's circuit for the time asked, up to the health policy's "
        "max_cooldown).",
    )
    slow_failure: float = Field(
        2.0,
        gt=0,
        le=MAX_SECONDS,
        allow_inf_nan=False,
        description="A transient failure that came after waiting this many seconds or more is "
        "not retried in place: the provider is silent, not busy; the next one is tried.",
    )


class ProviderSettings(BaseModel):
    """How to reach one provider. Every field has a default, so a provider works unconfigured.

    Keys a provider defines for itself (an organization, extra headers) are kept as extra fields
    and reach the plugin unchanged; the registry accepts only those its plugin declares in
    :attr:`ProviderInfo.settings_keys <hypotez_providers.ProviderInfo.settings_keys>`.
    """

    # Inputs are hidden from errors: they may be keys.
    model_config = ConfigDict(extra="allow", frozen=True, hide_input_in_errors=True)

    base_url: BaseUrl | None = Field(None, description="Overrides the provider's default address.")
    api_key: ApiKey | None = Field(None, description="The key; shown masked everywhere.")
    timeout: float = Field(
        60.0,
        gt=0,
        le=MAX_SECONDS,
        allow_inf_nan=False,
        description="Seconds to wait for each read of the answer.",
    )
    connect_timeout: float = Field(
        10.0,
        gt=0,
        le=MAX_SECONDS,
        allow_inf_nan=False,
        description="Seconds to wait for the connection.",
    )
    enabled: bool = Field(True, description="False hides the provider from routing.")
    models: tuple[str, ...] | None = Field(None, description="Replaces the provider's model list.")
    priority: int = Field(0, description="Higher is tried first when several serve a model.")
    weight: float = Field(
        1.0, ge=0, le=1e6, allow_inf_nan=False, description="Share under weighted balancing."
    )
    max_attempts: int | None = Field(
        None, ge=1, description="Tries per routed call at this provider (default: [retry])."
    )
    retry: RetryPolicy | None = Field(None, description="This provider's own retry policy.")
    max_line: int = Field(
        DEFAULT_MAX_LINE,
        ge=1024,
        description="Bytes: the longest stream line or event read; past it a MalformedResponse.",
    )
    max_body: int = Field(
        DEFAULT_MAX_BODY,
        ge=1024,
        description="Bytes: the largest whole answer read (decoded), or the largest text a "
        "plugin's whole answer may add up to; past it a MalformedResponse.",
    )
    rpm: int | None = Field(
        None, ge=1, description="Requests per minute, held across every process sharing state."
    )
    tpm: int | None = Field(
        None, ge=1, description="Tokens per minute (the answers' total usage), held likewise."
    )

    @property
    def api_key_value(self) -> str | None:
        """The key in clear, for building a request header; never log it."""
        return self.api_key.get_secret_value() if self.api_key else None

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        return redacted_repr_args(self, super().__repr_args__())


class EndpointSettings(BaseModel):
    """An OpenAI-compatible endpoint declared in the settings (``[endpoints.NAME]``).

    It becomes a provider named ``NAME``, registered at start-up like any plugin.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    base_url: BaseUrl = Field(description="Up to and including the version, e.g. .../v1.")
    models: tuple[str, ...] = Field(min_length=1, description="Model names it serves.")
    api_key: ApiKey | None = None
    api_key_env: str | None = Field(None, description="Environment variable holding the key.")
    headers: dict[str, str] = Field(default_factory=dict)
    priority: int = 0
    weight: float = Field(1.0, ge=0, le=1e6, allow_inf_nan=False)
    path: str = Field("/chat/completions", description="Appended to base_url.")
    supports_stream: bool = True
    include_usage: bool = Field(True, description="Ask streams for a final usage chunk.")
    prefill: bool = Field(
        False,
        description="The server continues a final assistant message (vLLM, llama.cpp): a "
        "broken stream may be continued here (rescue='continue').",
    )
    tools: bool = Field(False, description="The server takes tools and answers tool calls.")
    structured_output: bool = Field(
        False, description="The server honours response_format (JSON, JSON schema)."
    )
    images: bool = Field(False, description="The server takes image parts.")
    timeout: float = Field(60.0, gt=0, le=MAX_SECONDS, allow_inf_nan=False)
    connect_timeout: float = Field(10.0, gt=0, le=MAX_SECONDS, allow_inf_nan=False)
    rpm: int | None = Field(None, ge=1, description="Requests per minute (see ProviderSettings).")
    tpm: int | None = Field(None, ge=1, description="Tokens per minute (see ProviderSettings).")

    @field_validator("headers")
    @classmethod
    def _headers_are_sendable(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if not _HEADER_NAME.match(name):
                raise ValueError(f"{name!r} is not an HTTP header name")
            problem = secret_problem(value)
            if problem:
                raise ValueError(f"the value of header {name!r} {problem}")
        return headers

    def provider_settings(self) -> ProviderSettings:
        """The :class:`ProviderSettings` this endpoint implies."""
        return ProviderSettings(
            base_url=self.base_url,
            api_key=self.api_key,
            priority=self.priority,
            weight=self.weight,
            timeout=self.timeout,
            connect_timeout=self.connect_timeout,
            rpm=self.rpm,
            tpm=self.tpm,
        )

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        return redacted_repr_args(self, super().__repr_args__())
