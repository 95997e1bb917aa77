"""The exception tree: one base, split the way a caller decides what to do next.

- :class:`InvalidInput` — the call itself is wrong; fix it (nothing was sent).
- :class:`ProviderError` — a provider failed. :class:`TransientError` subclasses are worth
  retrying (``retryable`` is true); :class:`PermanentError` subclasses are not, for that provider.
- :class:`PluginError` / :class:`ConfigError` — the installation or the settings file is wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from .redaction import mask_secret, redact


class HypotezError(Exception):
    """Base of every error this package raises on purpose.

    No secret shows in one (see :mod:`hypotez_providers.redaction`): its ``args`` are redacted
    when it is made, and ``str()`` and ``repr()`` redact again, for a secret registered later.
    """

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact(arg) if isinstance(arg, str) else arg for arg in args))

    def __str__(self) -> str:
        return redact(super().__str__())

    def __repr__(self) -> str:
        return redact(super().__repr__())


class InvalidInput(HypotezError, ValueError):
    """The call is wrong (a message, an option, a model or provider name); nothing was sent.

    ``field`` names the offending input (``"messages[0].role"``, ``"temperature"``, ``"model"``).
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class UnknownProvider(InvalidInput):
    """No installed provider has that name."""


class UnknownModel(InvalidInput):
    """The model is not served by the provider (or by any provider) asked for."""


class ConfigError(HypotezError):
    """The settings file cannot be used; the message names the file, and the line and key."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.line = line
        self.key = key


class PluginError(HypotezError):
    """A plugin cannot be registered: bad metadata, wrong hook signature, duplicate name."""


class Routing(str, Enum):
    """What a routed call does after a provider fails with an error of a given class.

    Each :class:`ProviderError` subclass declares its own ``routing``; the router reads it and
    applies the two rules that depend on the moment (see ``docs/routing.md``): a transient
    failure that came only after a long wait, or whose Retry-After is longer than the cap, goes
    to the next provider instead of being retried in place.
    """

    RETRY = "retry"  #: the same provider again, as the retry policy allows; then the next
    NEXT = "next"  #: the next provider at once
    RAISE = "raise"  #: to the caller at once: every provider would fail the same way


class ErrorInfo(BaseModel):
    """A provider failure as data: what logs, listings and ``--json`` output carry."""

    model_config = ConfigDict(frozen=True)

    kind: str
    provider: str
    status: int | None
    message: str
    retryable: bool
    retry_after: float | None


class ProviderError(HypotezError):
    """A provider failed. Says which provider, which HTTP status (if any) and the upstream's words.

    ``retryable`` tells whether the same request may succeed later at the same provider;
    ``retry_after`` is how long the upstream asked to wait, in seconds, when it said so.
    """

    retryable = False
    advice = "try another provider"
    #: What the router does next (see :class:`Routing`).
    routing: ClassVar[Routing] = Routing.NEXT
    #: Whether the failure counts against the provider's health (its circuit breaker).
    counts_against_health: ClassVar[bool] = True
    #: Whether one such failure opens the provider's circuit at once.
    opens_circuit: ClassVar[bool] = False

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.provider = provider
        self.status = status
        self.upstream_message = redact(message)
        self.retry_after = retry_after
        super().__init__(self._describe())

    def _describe(self) -> str:
        where = f"{self.provider}" + (f" (HTTP {self.status})" if self.status is not None else "")
        wait = f"; retry after {self.retry_after:g}s" if self.retry_after is not None else ""
        return f"{type(self).__name__} from {where}: {self.upstream_message}{wait}; {self.advice}"

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments would otherwise be lost when pickled (multiprocessing, logging).
        return (
            _rebuild_provider_error,
            (
                type(self),
                self.provider,
                redact(self.upstream_message),
                self.status,
                self.retry_after,
            ),
        )

    def info(self) -> ErrorInfo:
        """Return the error as a serialisable record."""
        return ErrorInfo(
            kind=type(self).__name__,
            provider=self.provider,
            status=self.status,
            message=redact(self.upstream_message),
            retryable=self.retryable,
            retry_after=self.retry_after,
        )


def _rebuild_provider_error(
    cls: type[ProviderError],
    provider: str,
    message: str,
    status: int | None,
    retry_after: float | None,
) -> ProviderError:
    return cls(provider, message, status=status, retry_after=retry_after)


class TransientError(ProviderError):
    """A failure that may pass: retrying the same provider after a wait is reasonable."""

    retryable = True
    advice = "retry later or try another provider"
    routing = Routing.RETRY


class RateLimited(TransientError):
    """HTTP 429: the provider asks the caller to slow down (see ``retry_after``)."""

    advice = "wait for the retry-after delay or try another provider"


class ServerError(TransientError):
    """HTTP 5xx: the provider failed on its side."""


class Overloaded(TransientError):
    """HTTP 503/529 or an ``overloaded`` error: the provider is temporarily out of capacity."""


class ProviderTimeout(TransientError):
    """The provider did not connect or answer within the timeout.

    A silent provider is not retried in place: the router moves to the next one at once.
    """

    advice = "retry, raise the timeout, or try another provider"
    routing = Routing.NEXT


class ConnectionFailed(TransientError):
    """The connection could not be made, or broke before the answer was complete."""

    advice = "check the provider's base URL, retry, or try another provider"


class ConnectionRefused(ConnectionFailed):
    """Nothing listens at the provider's address: the router moves on at once, without retrying."""

    routing = Routing.NEXT
    opens_circuit = True


class PermanentError(ProviderError):
    """A failure that retrying the same provider will not fix."""


class AuthenticationFailed(PermanentError):
    """HTTP 401/403: the API key is missing, wrong or not allowed to use this model."""

    advice = "set the provider's API key (see `hypotez config`) or try another provider"


class BadRequest(PermanentError):
    """HTTP 400/413/422: the provider rejected the request itself; fix the call."""

    advice = "fix the request; other providers will most likely reject it too"
    routing = Routing.RAISE
    counts_against_health = False


class ContextLengthExceeded(BadRequest):
    """The messages are too long for this model's context window."""

    advice = "shorten the messages or use a model with a larger context window"
    routing = Routing.NEXT  # another provider may have a larger window


class NotFound(PermanentError):
    """HTTP 404: the endpoint or the model does not exist at this provider."""

    advice = "check the provider's base URL and the model name"


class MalformedResponse(PermanentError):
    """The answer is not in the provider's wire format (HTML, bad JSON, a cut stream)."""

    advice = "check the provider's base URL; try another provider"


class PluginFailed(PermanentError):
    """The provider's plugin raised an unexpected exception: a bug in the plugin, not upstream."""

    advice = "report it to the plugin's author; try another provider"


class AllProvidersFailed(HypotezError):
    """Every candidate provider failed or was skipped; ``attempts`` lists each try in order."""

    def __init__(self, model: str, attempts: Sequence[Any]) -> None:
        self.model = model
        self.attempts = tuple(_without_secrets(attempt) for attempt in attempts)
        lines = [f"every provider failed for model {model!r}:"]
        for attempt in self.attempts:
            lines.append(f"  - {attempt.describe()}")
        if not self.attempts:
            lines.append("  (no provider was tried)")
        super().__init__("\n".join(lines))

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.model, self.attempts))


def _without_secrets(attempt: Any) -> Any:
    """``attempt`` (an :class:`~hypotez_providers.Attempt`) with its message redacted."""
    message = getattr(attempt, "message", None)
    if isinstance(message, str) and redact(message) != message:
        return attempt.model_copy(update={"message": redact(message)})
    return attempt


class StreamInterrupted(HypotezError):
    """A stream failed after its first chunk reached the caller; nothing else was spliced in.

    ``text`` is what arrived before the failure, ``cause`` the provider's error.
    """

    def __init__(self, provider: str, text: str, cause: ProviderError) -> None:
        self.provider = provider
        self.text = text
        self.cause = cause
        super().__init__(f"the stream from {provider} broke after {len(text)} characters: {cause}")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.provider, self.text, self.cause))


__all__: Sequence[str] = (
    "AllProvidersFailed",
    "AuthenticationFailed",
    "BadRequest",
    "ConfigError",
    "ConnectionFailed",
    "ConnectionRefused",
    "ContextLengthExceeded",
    "ErrorInfo",
    "HypotezError",
    "InvalidInput",
    "MalformedResponse",
    "NotFound",
    "Overloaded",
    "PermanentError",
    "PluginError",
    "PluginFailed",
    "ProviderError",
    "ProviderTimeout",
    "RateLimited",
    "Routing",
    "ServerError",
    "StreamInterrupted",
    "TransientError",
    "UnknownModel",
    "UnknownProvider",
    "mask_secret",
    "redact",
)
