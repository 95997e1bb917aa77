"""Which providers may answer a model, in which order: pure logic, no I/O.

Order: an alias's own list, else an explicit route from the settings, else provider priority
(higher first, then name); each candidate's ``group`` says which ones load balancing may
reorder among themselves. ``provider=`` pins one; ``providers=[...]`` gives the chain. Disabled
providers, and those needing a key that is not set, are skipped with the reason recorded.
The router then adjusts the order by health.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import UnknownModel, UnknownProvider
from .provider import Provider
from .results import Attempt
from .settings import Settings

if TYPE_CHECKING:
    from .registry import PluginRecord


@dataclass(frozen=True, slots=True)
class Candidate:
    """A provider and the concrete model name to ask it for.

    ``group``: consecutive candidates of one group are equally preferred, and load balancing
    (:mod:`.balancing`) may reorder them; the same priority, or an alias opted in to balancing.
    """

    provider: Provider
    model: str
    group: int = 0


def plan(
    model: str,
    providers: Mapping[str, Provider],
    settings: Settings,
    *,
    pinned: str | None = None,
    chain: Sequence[str] | None = None,
    broken: Sequence[PluginRecord] = (),
) -> tuple[list[Candidate], list[Attempt]]:
    """The candidates for ``model`` in order, and the providers skipped (as attempts).

    Raises :class:`UnknownModel` (with the closest known names) when nothing serves ``model``,
    and :class:`UnknownProvider` for a pinned or chained name that is not installed.
    ``broken`` are the plugins that failed to load (:meth:`Registry.broken`); the
    :class:`UnknownModel` message names them, first those whose name suggests ``model``.
    """
    for name in ([pinned] if pinned else []) + list(chain or ()):
        if name not in providers:
            known = ", ".join(sorted(providers)) or "none installed"
            raise UnknownProvider(f"no provider named {name!r} (known: {known})", field="provider")
    targets = _targets(model, providers, settings)
    if pinned:
        targets = [target for target in targets if target[0] == pinned]
        if not targets:
            served = ", ".join(providers[pinned].info.models)
            raise UnknownModel(
                f"provider {pinned!r} does not serve model {model!r} (it serves {served})",
                field="model",
            )
    if chain:
        targets = [target for name in chain for target in targets if target[0] == name]
    if not targets:
        raise _unknown_model(model, providers, settings, broken, chained=bool(chain))
    candidates: list[Candidate] = []
    skipped: list[Attempt] = []
    listed = model in settings.aliases or model in settings.routes
    opted_in = listed and model in settings.balancing.aliases
    for index, (name, concrete) in enumerate(dict.fromkeys(targets)):
        provider = providers[name]
        reason = _skip_reason(provider)
        if reason:
            skipped.append(
                Attempt(provider=name, model=concrete, outcome="skipped", message=reason)
            )
        else:
            # Equally preferred: the same priority, or any entry of an alias opted in; an
            # explicit order (an alias, a route, a chain) keeps each entry in its own group.
            if chain or (listed and not opted_in):
                group = index
            else:
                group = 0 if opted_in else -provider.settings.priority
            candidates.append(Candidate(provider, concrete, group))
    return candidates, skipped


def _targets(
    model: str, providers: Mapping[str, Provider], settings: Settings
) -> list[tuple[str, str]]:
    if model in settings.aliases:
        targets: list[tuple[str, str]] = []
        for entry in settings.aliases[model]:
            name, colon, concrete = entry.partition(":")
            if colon:
                if name in providers:
                    targets.append((name, concrete))
            else:
                targets.extend((serving, entry) for serving in _serving(entry, providers))
        return targets
    if model in settings.routes:
        return [(name, model) for name in settings.routes[model] if name in providers]
    return [(name, model) for name in _serving(model, providers)]


def _serving(model: str, providers: Mapping[str, Provider]) -> list[str]:
    names = [name for name, provider in providers.items() if model in provider.models]
    return sorted(names, key=lambda name: (-providers[name].settings.priority, name))


def _skip_reason(provider: Provider) -> str | None:
    if not provider.settings.enabled:
        return "disabled in the settings"
    if provider.info.needs_auth and not provider.context.api_key:
        variable = provider.info.api_key_env or (
            "HYPOTEZ_" + provider.name.upper().replace("-", "_") + "_API_KEY"
        )
        return f"no API key: set {variable} or api_key in the settings"
    return None


def _unknown_model(
    model: str,
    providers: Mapping[str, Provider],
    settings: Settings,
    broken: Sequence[PluginRecord],
    *,
    chained: bool,
) -> UnknownModel:
    if chained:
        message = f"none of the providers given serves model {model!r}"
    elif model in settings.aliases:
        entries = settings.aliases[model]
        missing = sorted(
            {name for name, colon, _ in (e.partition(":") for e in entries) if colon}
            - set(providers)
        )
        message = f"alias {model!r} ({', '.join(entries)}) has no provider serving it"
        if missing:
            message += f": provider(s) not loaded: {', '.join(missing)}"
    else:
        known = sorted(
            {m for provider in providers.values() for m in provider.models} | set(settings.aliases)
        )
        close = [m for m in difflib.get_close_matches(model, known, n=6, cutoff=0.4) if m != model]
        hint = f"; closest: {', '.join(close[:5])}" if close else ""
        message = f"no provider serves model {model!r}{hint}"
    return UnknownModel(message + broken_plugins_hint(model, broken), field="model")


def broken_plugins_hint(model: str, broken: Sequence[PluginRecord]) -> str:
    """``"; ..."`` naming the plugins that failed to load (if any), suspects of ``model`` first.

    A broken plugin is a suspect when a part of its entry point or distribution name (split at
    ``-`` and ``_``, the ``hypotez`` prefix dropped) is a part of the model's name or starts it.
    """
    if not broken:
        return ""
    model_parts = set(_name_parts(model))
    suspects = [
        record
        for record in broken
        if any(
            part in model_parts or model.lower().startswith(part)
            for part in _name_parts(record.name, record.distribution or "")
        )
    ]
    if suspects:
        named = ", ".join(
            f"{record.name!r}" + (f" ({record.distribution})" if record.distribution else "")
            for record in suspects
        )
        return f"; plugin {named}, which may serve it, failed to load: see `hypotez plugins`"
    count = len(broken)
    names = ", ".join(record.name for record in broken)
    plural = "plugin" if count == 1 else "plugins"
    return f"; {count} {plural} failed to load ({names}): see `hypotez plugins`"


def _name_parts(*names: str) -> list[str]:
    parts = (part for name in names for part in re.split(r"[-_.:/ ]", name.lower()))
    return [part for part in parts if len(part) > 2 and part not in ("hypotez", "provider")]
