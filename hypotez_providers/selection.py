"""Which providers may answer a model, in which order: pure logic, no I/O.

Order: an alias's own list, else an explicit route from the settings, else provider priority
(higher first, then name). ``provider=`` pins one; ``providers=[...]`` gives the chain. Disabled
providers, and those needing a key that is not set, are skipped with the reason recorded.
The router then adjusts the order by health.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .errors import UnknownModel, UnknownProvider
from .provider import Provider
from .results import Attempt
from .settings import Settings


@dataclass(frozen=True, slots=True)
class Candidate:
    """A provider and the concrete model name to ask it for."""

    provider: Provider
    model: str


def plan(
    model: str,
    providers: Mapping[str, Provider],
    settings: Settings,
    *,
    pinned: str | None = None,
    chain: Sequence[str] | None = None,
) -> tuple[list[Candidate], list[Attempt]]:
    """The candidates for ``model`` in order, and the providers skipped (as attempts).

    Raises :class:`UnknownModel` (with the closest known names) when nothing serves ``model``,
    and :class:`UnknownProvider` for a pinned or chained name that is not installed.
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
        raise _unknown_model(model, providers, settings, chained=bool(chain))
    candidates: list[Candidate] = []
    skipped: list[Attempt] = []
    for name, concrete in dict.fromkeys(targets):
        provider = providers[name]
        reason = _skip_reason(provider)
        if reason:
            skipped.append(
                Attempt(provider=name, model=concrete, outcome="skipped", message=reason)
            )
        else:
            candidates.append(Candidate(provider, concrete))
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
    model: str, providers: Mapping[str, Provider], settings: Settings, *, chained: bool
) -> UnknownModel:
    if chained:
        return UnknownModel(f"none of the providers given serves model {model!r}", field="model")
    known = sorted(
        {m for provider in providers.values() for m in provider.models} | set(settings.aliases)
    )
    close = difflib.get_close_matches(model, known, n=5, cutoff=0.4)
    hint = f"; closest: {', '.join(close)}" if close else ""
    return UnknownModel(f"no provider serves model {model!r}{hint}", field="model")
