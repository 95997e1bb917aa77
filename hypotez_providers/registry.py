"""Finding, checking and holding provider plugins, on pluggy's public API.

Every provider, first-party or not, arrives the same way: an entry point in the group
``hypotez_providers`` (or :meth:`Registry.register` for an in-process plugin). A plugin that
cannot be imported or fails its checks is recorded as broken with the reason; it never stops
the others from loading.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from types import MappingProxyType

import pluggy
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from . import hookspecs
from ._first_party import claim_problem
from ._key_file import key_file_path, read_keys
from ._settings_source import did_you_mean
from .endpoints import EndpointProvider
from .errors import ConfigError, PluginError, UnknownProvider
from .legacy import LegacyProvider, is_legacy_module
from .provider import Provider
from .provider_info import ProviderInfo, describe_params
from .settings import Settings, load_settings

#: Comma-separated plugin (entry point) or distribution names to load; empty loads none.
LOAD_PLUGINS_ENV = "HYPOTEZ_LOAD_PLUGINS"
_REQUIRED_HOOKS = ("provider_info", "create_completion")
_HOOK_NAMES = tuple(
    name
    for name in dir(hookspecs)
    if hasattr(getattr(hookspecs, name), f"{hookspecs.PROJECT_NAME}_spec")
)


class PluginRecord(BaseModel):
    """One plugin as the listing shows it: where it came from, what it provides, or why not."""

    model_config = ConfigDict(frozen=True)

    name: str
    distribution: str | None = None
    version: str | None = None
    provider: str | None = None
    hooks: tuple[str, ...] = ()
    error: str | None = None

    @property
    def broken(self) -> bool:
        """Whether the plugin failed to load or to pass its checks."""
        return self.error is not None


class Registry:
    """The installed providers: loads the entry-point plugins and hands out :class:`Provider`.

    Create one per application (or use :func:`hypotez_providers.default_registry`). ``settings``
    defaults to the settings file; ``environ`` defaults to ``os.environ`` and supplies keys,
    base URLs and ``HYPOTEZ_LOAD_PLUGINS``. When the settings come from the file (``settings``
    not given), keys stored with ``hypotez keys set`` are the last place a key is looked for,
    after the environment and the settings file; the keys file is read once.

    Raises :class:`ConfigError` when the settings do not fit what is installed: a table, alias
    or route naming no provider, a key a provider does not read, a ``HYPOTEZ_LOAD_PLUGINS`` name
    that is no installed plugin, a key from the environment with whitespace around it.
    """

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        load_entry_points: bool = True,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._environ = os.environ if environ is None else environ
        self.settings = load_settings(environ=self._environ) if settings is None else settings
        self._key_file = key_file_path(self._environ) if settings is None else None
        self._stored_keys: dict[str, str] | None = None
        self.plugin_manager: pluggy.PluginManager = _PluginManager(hookspecs.PROJECT_NAME)
        self.plugin_manager.add_hookspecs(hookspecs)
        self._providers: dict[str, Provider] = {}
        self._records: list[PluginRecord] = []
        #: Entry-point names seen by the last :meth:`load_entry_points` (``None``: not run).
        self._installed: set[str] | None = None
        self._lock = threading.Lock()
        #: Counts changes to the providers; caches built on them compare it.
        self.generation = 0
        if load_entry_points:
            self.load_entry_points()
        self.load_endpoints()
        if load_entry_points:
            self.check_settings()

    def __repr__(self) -> str:
        return f"Registry(providers={sorted(self._providers)!r}, broken={len(self.broken())})"

    @property
    def environ(self) -> Mapping[str, str]:
        """The environment this registry reads: keys, base URLs, ``HYPOTEZ_STATE_URL``."""
        return self._environ

    def load_entry_points(self) -> None:
        """Load every plugin in the ``hypotez_providers`` entry-point group not loaded yet."""
        allowed = _allowed(self._environ.get(LOAD_PLUGINS_ENV))
        # Each distribution's name and version read once: a METADATA file is parsed at most once.
        found = [
            (entry_point, *_distribution(entry_point))
            for entry_point in sorted(entry_points(group=hookspecs.ENTRY_POINT_GROUP), key=_by_name)
        ]
        self._installed = {entry_point.name for entry_point, _, _ in found}
        _check_allowed(allowed, found, self.settings.endpoints)
        # An entry point is the same one again only from the same distribution (found twice on
        # sys.path); another distribution's entry point of the same name is a plugin of its own.
        seen = {(record.name, _normalise(record.distribution or "")) for record in self._records}
        for entry_point, distribution, version in found:
            if (entry_point.name, _normalise(distribution or "")) in seen:
                continue
            if allowed is not None and not allowed & {
                _normalise(entry_point.name),
                _normalise(distribution or ""),
            }:
                continue
            seen.add((entry_point.name, _normalise(distribution or "")))
            try:
                plugin = entry_point.load()
            except KeyboardInterrupt:
                raise
            except BaseException as error:  # noqa: BLE001 - sys.exit() at import included
                self._record_broken(
                    entry_point.name, distribution, version, f"import failed: {_described(error)}"
                )
                continue
            try:
                self._add(plugin, entry_point.name, distribution, version, third_party=True)
            except PluginError as error:
                self._record_broken(entry_point.name, distribution, version, str(error))

    def load_endpoints(self) -> None:
        """Register a provider for each ``[endpoints.NAME]`` table of the settings."""
        for name, endpoint in sorted(self.settings.endpoints.items()):
            plugin_name = f"endpoint:{name}"
            try:
                self._add(EndpointProvider(name, endpoint), plugin_name, "(settings)", None)
            except PluginError as error:
                self._record_broken(plugin_name, "(settings)", None, str(error))

    def check_settings(self) -> None:
        """Raise :class:`ConfigError` for a settings name that no installed provider has.

        Run when the registry is built with its entry points; call it yourself after
        :meth:`register`-ing a registry's providers by hand. See :meth:`Settings.check_names`.
        """
        installed = self._installed
        if installed is None:
            installed = {point.name for point in entry_points(group=hookspecs.ENTRY_POINT_GROUP)}
        self.settings.check_names(
            providers=self._providers, plugins=installed | {r.name for r in self._records}
        )

    def register(self, plugin: object, name: str | None = None) -> Provider | None:
        """Register an in-process plugin (a module, class instance, or gpt4free-style module).

        Returns its provider (``None`` for a plugin with observer hooks only). Raises
        :class:`PluginError` with the reason if it fails the checks, :class:`ConfigError` if its
        settings are wrong (an unknown key in its table); nothing is kept then.
        """
        plugin_name = name or getattr(plugin, "__name__", None) or f"plugin-{id(plugin)}"
        return self._add(plugin, plugin_name, None, None)

    def providers(self) -> list[ProviderInfo]:
        """Metadata of every working provider, by name."""
        return [self._providers[name].info for name in sorted(self._providers)]

    def provider(self, name: str) -> Provider:
        """The provider called ``name``, or :class:`UnknownProvider` listing the known ones."""
        try:
            return self._providers[name]
        except KeyError:
            known = ", ".join(sorted(self._providers)) or "none installed"
            raise UnknownProvider(
                f"no provider named {name!r} (known: {known}); "
                "see `hypotez plugins` for broken ones",
                field="provider",
            ) from None

    @property
    def by_name(self) -> Mapping[str, Provider]:
        """The working providers by name (a read-only view)."""
        return MappingProxyType(self._providers)

    def plugins(self) -> list[PluginRecord]:
        """Every plugin seen, working or broken, in load order."""
        return list(self._records)

    def broken(self) -> list[PluginRecord]:
        """The plugins that failed to load, each with its reason."""
        return [record for record in self._records if record.broken]

    def close(self) -> None:
        """Close every provider's pooled connections."""
        for provider in self._providers.values():
            provider.context.transport.close()

    def _add(
        self,
        plugin: object,
        plugin_name: str,
        distribution: str | None,
        version: str | None,
        *,
        third_party: bool = False,
    ) -> Provider | None:
        """Register ``plugin`` and build its provider, or raise :class:`PluginError`, keeping none.

        ``third_party``: found through an entry point, so bound by the first-party name rule
        (:mod:`._first_party`) unless ``distribution`` is the name's own.
        """
        try:
            if is_legacy_module(plugin):
                plugin = LegacyProvider(plugin)
        except KeyboardInterrupt:
            raise
        except BaseException as error:  # noqa: BLE001 - a module whose attributes raise
            raise PluginError(f"cannot be inspected: {_described(error)}") from None
        with self._lock:
            manager = self.plugin_manager
            try:
                manager.register(plugin, name=plugin_name)
            except pluggy.PluginValidationError as error:
                raise PluginError(f"a hook has a wrong signature: {error}") from None
            except ValueError as error:
                raise PluginError(str(error)) from None
            except KeyboardInterrupt:
                raise
            except BaseException as error:  # noqa: BLE001 - a module whose attributes raise
                raise PluginError(f"cannot be registered: {_described(error)}") from None
            try:
                provider = self._check(plugin, distribution, third_party=third_party)
            except (PluginError, ConfigError):
                manager.unregister(plugin)
                raise
            if provider is not None:
                self._providers[provider.name] = provider
                self.generation += 1
            hooks = tuple(caller.name for caller in manager.get_hookcallers(plugin) or ())
            self._records.append(
                PluginRecord(
                    name=plugin_name,
                    distribution=distribution,
                    version=version,
                    provider=provider.name if provider else None,
                    hooks=hooks,
                )
            )
            return provider

    def _check(
        self, plugin: object, distribution: str | None, *, third_party: bool
    ) -> Provider | None:
        """The plugin's provider, or ``None`` for a plugin with observer hooks only.

        A ``third_party`` plugin (from an entry point) may not use a first-party name unless
        ``distribution`` owns it; the application's own plugins and endpoints may.
        """
        implementations: dict[str, pluggy.HookImpl] = {}
        for caller in self.plugin_manager.get_hookcallers(plugin) or ():
            if not caller.has_spec():
                known = ", ".join(_HOOK_NAMES)
                raise PluginError(f"unknown hook {caller.name!r}: the hooks are {known}")
            for implementation in caller.get_hookimpls():
                if implementation.plugin is plugin:
                    implementations[caller.name] = implementation
        missing = [hook for hook in _REQUIRED_HOOKS if hook not in implementations]
        if len(missing) == len(_REQUIRED_HOOKS) and implementations:
            return None
        if missing:
            raise PluginError(
                f"missing hook implementation: {', '.join(missing)} (mark it @hookimpl)"
            )
        info = self._info(implementations)
        if third_party:
            problem = claim_problem(info, distribution)
            if problem is not None:
                raise PluginError(problem)
        if info.name in self._providers:
            owner = next(r for r in self._records if r.provider == info.name)
            raise PluginError(
                f"provider name {info.name!r} is already used by plugin {owner.name!r}"
                + (f" from {owner.distribution}" if owner.distribution else "")
            )
        # A ConfigError here is the settings' fault, not the plugin's: it stops the registry.
        self.settings.check_provider_keys(info.name, info.settings_keys)
        settings = self.settings.for_provider(
            info.name, api_key_env=info.api_key_env, environ=self._environ
        )
        if settings.api_key is None and self._key_file is not None:
            if self._stored_keys is None:
                self._stored_keys = read_keys(self._key_file)
            stored = self._stored_keys.get(info.name)
            if stored:
                settings = settings.model_copy(update={"api_key": SecretStr(stored)})
        if settings.models:
            info = info.model_copy(update={"models": settings.models})
        completion = implementations["create_completion"]
        return Provider(info, settings, completion.function, completion.argnames)

    def _info(self, implementations: dict[str, pluggy.HookImpl]) -> ProviderInfo:
        try:
            info = ProviderInfo.model_validate(implementations["provider_info"].function())
        except ValidationError as error:
            # Raised by the plugin building ProviderInfo itself, or by checking what it returned.
            problem = error.errors()[0]
            where = ".".join(str(part) for part in problem["loc"]) or "provider_info()"
            raise PluginError(f"invalid provider_info: {where}: {problem['msg']}") from None
        except KeyboardInterrupt:
            raise
        except BaseException as error:  # noqa: BLE001 - a crashing hook marks the plugin broken
            raise PluginError(f"provider_info raised {_described(error)}") from None
        if not info.params:
            function = implementations["create_completion"].function
            info = info.model_copy(update={"params": describe_params(function)})
        return info

    def _record_broken(
        self, name: str, distribution: str | None, version: str | None, reason: str
    ) -> None:
        with self._lock:
            self._records.append(
                PluginRecord(name=name, distribution=distribution, version=version, error=reason)
            )


class _PluginManager(pluggy.PluginManager):
    """pluggy's manager, not looking at dunder names for hooks (no hook is called ``__x__``).

    pluggy reads every name ``dir(plugin)`` lists; a class instance's ~25 inherited dunders
    were most of the cost of registering one ``[endpoints.NAME]`` plugin.
    """

    def parse_hookimpl_opts(self, plugin: object, name: str) -> pluggy.HookimplOpts | None:
        """``None`` for a dunder name, else what pluggy makes of the attribute."""
        if name.startswith("__") and name.endswith("__"):
            return None
        return super().parse_hookimpl_opts(plugin, name)


def _described(error: BaseException) -> str:
    """``SystemExit: 4``: the type of what a plugin raised, and its message if it has one."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _allowed(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {_normalise(name) for name in value.split(",") if name.strip()}


def _check_allowed(
    allowed: set[str] | None,
    found: list[tuple[EntryPoint, str | None, str | None]],
    endpoints: Mapping[str, object],
) -> None:
    """Raise :class:`ConfigError` for a ``HYPOTEZ_LOAD_PLUGINS`` name that nothing installed has.

    Entry point and distribution names count, and ``[endpoints.NAME]`` names (always loaded).
    """
    if not allowed:
        return
    known = {_normalise(name) for name in endpoints}
    for entry_point, distribution, _ in found:
        known |= {_normalise(entry_point.name), _normalise(distribution or "")}
    known.discard("")
    for name in sorted(allowed - known):
        listing = ", ".join(sorted(known)) or "none"
        raise ConfigError(
            f"{LOAD_PLUGINS_ENV}: no installed plugin is called {name!r}"
            + (did_you_mean(name, known) or f" (installed: {listing})"),
            key=LOAD_PLUGINS_ENV,
        )


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def _by_name(entry_point: EntryPoint) -> str:
    return entry_point.name


def _distribution(entry_point: EntryPoint) -> tuple[str | None, str | None]:
    """The name and version of the distribution ``entry_point`` comes from.

    Read from the metadata's header lines only: ``dist.metadata`` parses the whole file (a long
    description included) with the email parser, and ``dist.version`` parses it again.
    """
    dist = getattr(entry_point, "dist", None)
    if dist is None:
        return None, None
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    headers: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            break
        key, colon, value = line.partition(":")
        if colon and key in ("Name", "Version"):
            headers.setdefault(key, value.strip())
    if len(headers) < 2:
        metadata = dist.metadata
        return metadata["Name"], metadata["Version"]
    return headers["Name"], headers["Version"]
