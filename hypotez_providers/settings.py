"""Per-provider settings from a TOML file and the environment (the environment wins).

The file is ``$HYPOTEZ_CONFIG`` if set, else ``config.toml`` in the user's config directory::

    [providers.gravityengine]
    base_url = "http://127.0.0.1:8080"
    timeout = 30

    [providers.openai]
    api_key = "sk-..."        # better: OPENAI_API_KEY or HYPOTEZ_OPENAI_API_KEY in the environment

Environment variables, for a provider named ``NAME`` (upper-cased, ``-`` as ``_``):
``HYPOTEZ_NAME_BASE_URL``, ``HYPOTEZ_NAME_API_KEY``, and the vendor's own key variable when the
provider declares one (``api_key_env``); ``HYPOTEZ_NAME_API_KEY`` beats the vendor's variable.

The settings are strict: an unknown key or table, a base URL that is not http(s) with a host,
a non-finite or absurd number of seconds, or a key with whitespace or control characters around
it is a :class:`ConfigError` naming the file, the line and the closest known name. What only the
installed plugins can tell (which providers exist, which keys of their own they read) is checked
by the :class:`~hypotez_providers.Registry` when it is built (:meth:`Settings.check_names`,
:meth:`Settings.check_provider_keys`).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
)

from ._settings_secrets import redacted_repr_args
from ._settings_source import decode, did_you_mean, fields_at, line_of, parse_toml, problem_at
from .errors import ConfigError
from .health import HealthPolicy
from .limits import DEFAULT_MAX_BODY, DEFAULT_MAX_LINE
from .urls import check_base_url

# Not used here since parsing moved to _settings_source; the docs' tests read TOML with it.
if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib  # noqa: F401

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
            timeout=self.timeout,
            connect_timeout=self.connect_timeout,
        )

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        return redacted_repr_args(self, super().__repr_args__())


class Settings(BaseModel):
    """Everything read from the settings file: one :class:`ProviderSettings` per provider.

    ``endpoints`` declare OpenAI-compatible providers. ``aliases`` map a name to a list of
    ``"provider:model"`` targets (or plain model names, meaning every provider that serves
    it), tried in that order. ``routes`` give an explicit provider order for a model.
    ``retry`` and ``health`` set the router's policies.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    endpoints: dict[str, EndpointSettings] = Field(default_factory=dict)
    aliases: dict[str, Names] = Field(default_factory=dict)
    routes: dict[str, Names] = Field(default_factory=dict)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    health: HealthPolicy = Field(default_factory=HealthPolicy)
    path: Path | None = Field(None, exclude=True, description="The file these came from, if any.")
    #: The text they were parsed from, to name the line of a problem found later.
    _source: str | None = PrivateAttr(None)

    def for_provider(
        self, name: str, *, api_key_env: str | None = None, environ: Mapping[str, str] | None = None
    ) -> ProviderSettings:
        """Provider ``name``'s effective settings: the file's, overridden by the environment.

        Raises :class:`ConfigError` naming the variable when ``HYPOTEZ_NAME_BASE_URL`` is not
        an http(s) URL, or when the key read from the environment has whitespace or control
        characters around or in it (the message never shows the key).
        """
        environ = os.environ if environ is None else environ
        base = self.providers.get(name)
        if base is None:
            endpoint = self.endpoints.get(name)
            base = endpoint.provider_settings() if endpoint else ProviderSettings()
        prefix = "HYPOTEZ_" + name.upper().replace("-", "_") + "_"
        updates: dict[str, Any] = {}
        base_url = environ.get(prefix + "BASE_URL")
        if base_url:
            try:
                updates["base_url"] = check_base_url(base_url)
            except ValueError as error:
                raise ConfigError(f"{prefix}BASE_URL: {error}", key=prefix + "BASE_URL") from None
        for variable in (prefix + "API_KEY", api_key_env):
            key = environ.get(variable) if variable else None
            if key and variable:
                problem = secret_problem(key)
                if problem:
                    raise ConfigError(f"{variable}: the key {problem}", key=variable)
                updates["api_key"] = SecretStr(key)
                break
        return base.model_copy(update=updates) if updates else base

    def check_names(self, *, providers: Collection[str], plugins: Collection[str] = ()) -> None:
        """Raise :class:`ConfigError` for a name in these settings that nothing installed has.

        ``providers`` are the working providers' names; ``plugins`` the installed plugins'
        (entry point) names, loaded or not, so that settings for a plugin filtered out by
        ``HYPOTEZ_LOAD_PLUGINS`` or broken stay valid. Checked: every ``[providers.NAME]``
        table, the provider of every ``"provider:model"`` alias target, every provider of
        ``[routes]``. The error names the file, the line and the closest known name.
        """
        known = set(providers) | set(plugins) | set(self.endpoints)
        listing = ", ".join(sorted(known)) or "none"
        for name in self.providers:
            if name not in known:
                raise self.error_at(
                    ("providers", name),
                    f"[providers.{name}] is for a provider that is not installed"
                    + (did_you_mean(name, known) or f" (installed: {listing})"),
                )
        for alias, targets in self.aliases.items():
            for target in targets:
                name, colon, _ = target.partition(":")
                if colon and name not in known:
                    raise self.error_at(
                        ("aliases", alias),
                        f"alias {alias!r} names provider {name!r} in {target!r}, which is not "
                        "installed"
                        + (did_you_mean(name, known) or f" (installed: {listing})")
                        + "; a target is 'provider:model', or a model name without ':'",
                    )
        for model, names in self.routes.items():
            for name in names:
                if name not in known:
                    raise self.error_at(
                        ("routes", model),
                        f"the route for {model!r} names provider {name!r}, which is not "
                        "installed" + (did_you_mean(name, known) or f" (installed: {listing})"),
                    )

    def check_provider_keys(self, name: str, declared: Collection[str] = ()) -> None:
        """Raise :class:`ConfigError` for a key in ``[providers.NAME]`` that nobody reads.

        A key is known if :class:`ProviderSettings` has it or the provider's plugin
        ``declared`` it (:attr:`ProviderInfo.settings_keys`); the error suggests the closest.
        """
        table = self.providers.get(name)
        for key in (table.model_extra or {}) if table is not None else ():
            if key not in declared:
                known = [*ProviderSettings.model_fields, *declared]
                raise self.error_at(
                    ("providers", name, key),
                    f"unknown key {key!r} in [providers.{name}]{did_you_mean(key, known)}",
                )

    def error_at(self, loc: Sequence[str], message: str) -> ConfigError:
        """A :class:`ConfigError` for the setting at ``loc``, naming the file and its line."""
        where = str(self.path) if self.path else "<settings>"
        line = line_of(self._source, loc) if self._source else None
        at = f", line {line}" if line else ""
        return ConfigError(f"{where}{at}: {message}", path=where, line=line, key=".".join(loc))


def default_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$HYPOTEZ_CONFIG``, else ``config.toml`` under the platform's user config directory."""
    environ = os.environ if environ is None else environ
    if environ.get("HYPOTEZ_CONFIG"):
        return Path(environ["HYPOTEZ_CONFIG"]).expanduser()
    if sys.platform == "win32":
        root = Path(environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        root = Path.home() / "Library" / "Application Support"
    else:
        root = Path(environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return root / "hypotez" / "config.toml"


def load_settings(
    path: str | Path | None = None, *, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read the settings file (see the module docs for where it is); no file means defaults.

    A file named explicitly (argument or ``HYPOTEZ_CONFIG``) must exist. Anything wrong with
    it (unreadable, a directory, not UTF-8, not TOML, an unknown or bad key) raises
    :class:`ConfigError` naming the file, and the line and the key when there is one.
    """
    environ = os.environ if environ is None else environ
    explicit = path is not None or bool(environ.get("HYPOTEZ_CONFIG"))
    file = Path(path) if path is not None else default_config_path(environ)
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"{file}: settings file not found", path=str(file)) from None
        return Settings()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ConfigError(f"{file}: cannot read: {reason}", path=str(file)) from None
    return parse_settings(decode(data, str(file)), path=file)


def parse_settings(text: str, *, path: Path | None = None) -> Settings:
    """Parse settings from TOML text; ``path`` is only used in error messages.

    Raises :class:`ConfigError` (naming ``path``, the line, the key and the closest known key
    for a misspelt one) for anything that is not valid settings.
    """
    where = str(path) if path else "<settings>"
    data = parse_toml(text, where)
    if "path" in data:
        # ``path`` is the Settings' own record of the file, not a key of the file.
        raise problem_at(where, text, ["path"], "unknown key 'path'")
    try:
        settings = Settings.model_validate({**data, "path": path})
    except ValidationError as error:
        problems = error.errors(include_input=False)
        # A misspelt key is the likelier cause of a missing one: report it first.
        problem = next((p for p in problems if p["type"] == "extra_forbidden"), problems[0])
        loc = [str(part) for part in problem["loc"] if not isinstance(part, int)]
        if problem["type"] == "extra_forbidden":
            known = [name for name in fields_at(Settings, loc) if name != "path"]
            message = f"unknown key {loc[-1]!r}{did_you_mean(loc[-1], known)}"
        else:
            message = problem["msg"].removeprefix("Value error, ")
        raise problem_at(where, text, loc, message) from None
    except RecursionError:
        raise ConfigError(f"{where}: values are nested too deeply", path=where) from None
    settings._source = text
    return settings
