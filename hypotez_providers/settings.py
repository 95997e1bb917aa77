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
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from ._settings_secrets import redacted_repr_args
from .errors import ConfigError
from .health import HealthPolicy

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


class RetryPolicy(BaseModel):
    """How a routed call retries a provider's transient failures before moving on.

    Waits grow exponentially from ``initial_backoff`` up to ``max_backoff`` seconds, with up to
    ``jitter`` seconds added at random, and are never shorter than the provider's Retry-After
    (a Retry-After over ``max_retry_after`` is not waited out: the next provider is tried).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    attempts: int = Field(2, ge=1, description="Tries per provider, the first included.")
    initial_backoff: float = Field(0.25, ge=0, allow_inf_nan=False)
    max_backoff: float = Field(4.0, ge=0, allow_inf_nan=False)
    jitter: float = Field(0.25, ge=0, allow_inf_nan=False)
    max_retry_after: float = Field(
        30.0,
        ge=0,
        allow_inf_nan=False,
        description="Longest Retry-After waited out in place; a longer ask moves to the next "
        "provider (and opens this one's circuit for the time asked, up to the health policy's "
        "max_cooldown).",
    )
    slow_failure: float = Field(
        2.0,
        gt=0,
        allow_inf_nan=False,
        description="A transient failure that came after waiting this many seconds or more is "
        "not retried in place: the provider is silent, not busy; the next one is tried.",
    )


class ProviderSettings(BaseModel):
    """How to reach one provider. Every field has a default, so a provider works unconfigured.

    Keys a provider defines for itself (an organization, extra headers) are kept as extra fields
    and reach the plugin unchanged.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    base_url: str | None = Field(None, description="Overrides the provider's default address.")
    api_key: SecretStr | None = Field(None, description="The key; shown masked everywhere.")
    timeout: float = Field(60.0, gt=0, description="Seconds to wait for each read of the answer.")
    connect_timeout: float = Field(10.0, gt=0, description="Seconds to wait for the connection.")
    enabled: bool = Field(True, description="False hides the provider from routing.")
    models: tuple[str, ...] | None = Field(None, description="Replaces the provider's model list.")
    priority: int = Field(0, description="Higher is tried first when several serve a model.")
    max_attempts: int | None = Field(
        None, ge=1, description="Tries per routed call at this provider (default: [retry])."
    )
    retry: RetryPolicy | None = Field(None, description="This provider's own retry policy.")

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

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str = Field(description="Up to and including the version, e.g. .../v1.")
    models: tuple[str, ...] = Field(min_length=1, description="Model names it serves.")
    api_key: SecretStr | None = None
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
    timeout: float = Field(60.0, gt=0)
    connect_timeout: float = Field(10.0, gt=0)

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

    model_config = ConfigDict(extra="forbid", frozen=True)

    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    endpoints: dict[str, EndpointSettings] = Field(default_factory=dict)
    aliases: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    routes: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    health: HealthPolicy = Field(default_factory=HealthPolicy)
    path: Path | None = Field(None, exclude=True, description="The file these came from, if any.")

    def for_provider(
        self, name: str, *, api_key_env: str | None = None, environ: Mapping[str, str] | None = None
    ) -> ProviderSettings:
        """Provider ``name``'s effective settings: the file's, overridden by the environment."""
        environ = os.environ if environ is None else environ
        base = self.providers.get(name)
        if base is None:
            endpoint = self.endpoints.get(name)
            base = endpoint.provider_settings() if endpoint else ProviderSettings()
        prefix = "HYPOTEZ_" + name.upper().replace("-", "_") + "_"
        updates: dict[str, Any] = {}
        base_url = environ.get(prefix + "BASE_URL")
        if base_url:
            updates["base_url"] = base_url
        key = environ.get(prefix + "API_KEY") or (environ.get(api_key_env) if api_key_env else None)
        if key:
            updates["api_key"] = SecretStr(key)
        return base.model_copy(update=updates) if updates else base


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

    A file named explicitly (argument or ``HYPOTEZ_CONFIG``) must exist. A malformed file raises
    :class:`ConfigError` naming the file, the line and the key.
    """
    environ = os.environ if environ is None else environ
    explicit = path is not None or bool(environ.get("HYPOTEZ_CONFIG"))
    file = Path(path) if path is not None else default_config_path(environ)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"{file}: settings file not found", path=str(file)) from None
        return Settings()
    except OSError as error:
        raise ConfigError(f"{file}: cannot read: {error.strerror}", path=str(file)) from None
    return parse_settings(text, path=file)


def parse_settings(text: str, *, path: Path | None = None) -> Settings:
    """Parse settings from TOML text; ``path`` is only used in error messages."""
    where = str(path) if path else "<settings>"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        match = re.search(r"line (\d+)", str(error))
        line = int(match.group(1)) if match else None
        raise ConfigError(f"{where}: {error}", path=where, line=line) from None
    try:
        return Settings.model_validate({**data, "path": path})
    except ValidationError as error:
        problem = error.errors()[0]
        loc = [str(part) for part in problem["loc"] if not isinstance(part, int)]
        key = ".".join(loc)
        line = _line_of(text, loc)
        at = f", line {line}" if line else ""
        text = (
            "unknown key (check its spelling)"
            if problem["type"] == "extra_forbidden"
            else problem["msg"]
        )
        raise ConfigError(f"{where}{at}: {key}: {text}", path=where, line=line, key=key) from None


_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")


def _line_of(text: str, loc: list[str]) -> int | None:
    """The line where key ``loc[-1]`` is set inside table ``loc[:-1]``, as well as we can tell."""
    if not loc:
        return None
    table, key = ".".join(loc[:-1]), loc[-1]
    current = ""
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            current = header.group(1).replace('"', "").replace(" ", "")
            if current == ".".join(loc) or current.startswith(".".join(loc) + "."):
                return number
            continue
        stripped = line.strip()
        if current == table and re.match(rf"^\"?{re.escape(key)}\"?\s*=", stripped):
            return number
    return None
