"""First-party provider names: only the distributions shipped with hypotez-providers may use them.

A provider's name decides which calls it is routed and which keys it is given
(``HYPOTEZ_<NAME>_API_KEY``, ``[providers.<name>]``, its ``api_key_env``). An installed plugin
that claims ``openai`` would otherwise receive the user's ``OPENAI_API_KEY``, so each
first-party name belongs to one distribution, whatever order the entry points load in. The
rule binds plugins found through entry points; an application's own in-process
:meth:`~hypotez_providers.Registry.register` and its ``[endpoints.NAME]`` settings are its own
choice.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from .provider_info import ProviderInfo

#: Each first-party provider name and the distribution (in ``providers/``) that owns it.
FIRST_PARTY_PROVIDERS: Mapping[str, str] = MappingProxyType(
    {
        "anthropic": "hypotez-anthropic",
        "gravityengine": "hypotez-gravityengine",
        "ollama": "hypotez-ollama",
        "openai": "hypotez-openai",
    }
)
#: The vendors' own key variables that first-party providers read (their ``api_key_env``).
_VENDOR_KEYS: Mapping[str, str] = MappingProxyType(
    {"ANTHROPIC_API_KEY": "anthropic", "OPENAI_API_KEY": "openai"}
)


def claim_problem(info: ProviderInfo, distribution: str | None) -> str | None:
    """Why a plugin from ``distribution`` may not use ``info``'s name or key, or ``None``.

    A first-party distribution may use its own name and variable only; any other distribution
    may use neither a first-party name nor a first-party provider's key variable.
    """
    owner = FIRST_PARTY_PROVIDERS.get(info.name)
    source = _normalise(distribution or "")
    if owner is not None and source != owner:
        return (
            f"provider name {info.name!r} belongs to the first-party distribution {owner}; "
            f"this plugin comes from {distribution or 'an unknown distribution'}: give it a "
            "name of its own (see docs/plugins.md)"
        )
    reader = _key_owner(info.api_key_env)
    if reader is not None and FIRST_PARTY_PROVIDERS[reader] != source:
        return (
            f"api_key_env {info.api_key_env!r} is the key of the first-party provider "
            f"{reader!r} ({FIRST_PARTY_PROVIDERS[reader]}); a plugin reads a variable of its "
            f"own, or HYPOTEZ_{info.name.upper().replace('-', '_')}_API_KEY"
        )
    return None


def _key_owner(variable: str | None) -> str | None:
    if not variable:
        return None
    if variable in _VENDOR_KEYS:
        return _VENDOR_KEYS[variable]
    for name in FIRST_PARTY_PROVIDERS:
        if variable == f"HYPOTEZ_{name.upper().replace('-', '_')}_API_KEY":
            return name
    return None


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.strip()).lower()
