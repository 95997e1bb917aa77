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
import sys
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
)

from ._settings_source import decode, did_you_mean, fields_at, line_of, parse_toml, problem_at
from .balancing import BalancingSettings
from .errors import ConfigError
from .gateway.settings import GatewaySettings
from .health import HealthPolicy
from .hedging import Hedge
from .state.settings import StateSettings
from .urls import check_base_url

# Not used here since parsing moved to _settings_source; the docs' tests read TOML with it.
if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib  # noqa: F401

# The tables' models live in provider_settings; these names stay importable from here.
from .provider_settings import MAX_SECONDS as MAX_SECONDS
from .provider_settings import ApiKey as ApiKey
from .provider_settings import BaseUrl as BaseUrl
from .provider_settings import EndpointSettings as EndpointSettings
from .provider_settings import Names as Names
from .provider_settings import ProviderSettings as ProviderSettings
from .provider_settings import RetryPolicy as RetryPolicy
from .provider_settings import secret_problem as secret_problem


class LogSettings(BaseModel):
    """The ``[logs]`` table: whether the ``hypotez`` command records its calls locally."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="Record every chat call in the local SQLite log.")


class Settings(BaseModel):
    """Everything read from the settings file: one :class:`ProviderSettings` per provider.

    ``endpoints`` declare OpenAI-compatible providers. ``aliases`` map a name to a list of
    ``"provider:model"`` targets (or plain model names, meaning every provider that serves
    it), tried in that order. ``routes`` give an explicit provider order for a model.
    ``retry`` and ``health`` set the router's policies. ``default_model`` is what
    ``hypotez chat`` asks when no ``-m`` is given; ``[logs]`` turns its call log on or off;
    ``[gateway]`` configures ``hypotez serve``. ``[balancing]`` orders equally preferred
    providers (:mod:`.balancing`); ``[hedging]`` hedges an alias's or a model's calls
    (:class:`Hedge`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    endpoints: dict[str, EndpointSettings] = Field(default_factory=dict)
    aliases: dict[str, Names] = Field(default_factory=dict)
    routes: dict[str, Names] = Field(default_factory=dict)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    health: HealthPolicy = Field(default_factory=HealthPolicy)
    default_model: str | None = Field(None, description="The model when none is named.")
    logs: LogSettings = Field(default_factory=LogSettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    state: StateSettings = Field(
        default_factory=StateSettings, description="Where circuits are shared (Redis)."
    )
    balancing: BalancingSettings = Field(default_factory=BalancingSettings)
    hedging: dict[str, Hedge] = Field(
        default_factory=dict, description="Alias or model name: hedge its calls so."
    )
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
        ``[routes]``, and that every name under ``[balancing.aliases]`` is an alias or a route.
        The error names the file, the line and the closest known name.
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
        listed = set(self.aliases) | set(self.routes)
        for name in self.balancing.aliases:
            if name not in listed:
                raise self.error_at(
                    ("balancing", "aliases", name),
                    f"[balancing.aliases] names {name!r}, which is neither an alias nor a route"
                    + (did_you_mean(name, listed) or ""),
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
