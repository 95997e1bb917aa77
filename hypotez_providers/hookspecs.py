"""The hooks a provider plugin implements. This module is the plugin author's reference.

A provider plugin is any object (usually a module) with two functions marked ``@hookimpl``::

    from hypotez_providers import ProviderInfo, hookimpl

    @hookimpl
    def provider_info():
        return ProviderInfo(name="example", url="https://example.com", models=["example-1"],
                            supports_stream=True, needs_auth=False)

    @hookimpl
    def create_completion(model, messages, stream):
        yield "Hello"
        yield " world"

Install it as a distribution with an entry point in the group ``hypotez_providers``::

    [project.entry-points.hypotez_providers]
    example = "hypotez_example"

A hook implementation may accept any subset of the arguments a spec names (pluggy passes only
the ones it asks for), so the seed's three-argument ``create_completion`` is a valid one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .context import ProviderContext
    from .options import CompletionOptions
    from .provider_info import ProviderInfo
    from .results import Chunk

PROJECT_NAME = "hypotez_providers"
ENTRY_POINT_GROUP = "hypotez_providers"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def provider_info() -> ProviderInfo:  # type: ignore[empty-body]
    """Describe the provider: its name, address, models and capabilities.

    Called once, when the plugin is registered. Return a :class:`~hypotez_providers.ProviderInfo`.
    Leave ``params`` out: the registry derives it from your ``create_completion`` signature.
    Invalid metadata (a name that is not a lower-case slug, no models, a name another plugin
    already uses) marks the plugin broken with that reason; other providers are unaffected.
    """


@hookspec
def create_completion(  # type: ignore[empty-body]
    model: str,
    messages: list[dict[str, Any]],
    stream: bool,
    options: CompletionOptions,
    context: ProviderContext,
) -> Iterable[str | Chunk]:
    """Produce the answer to ``messages`` from ``model``, piece by piece.

    Called only for this provider when a caller asks it (never broadcast to every plugin), with
    every argument already validated:

    - ``model``: one of the names your ``provider_info`` listed (or the settings' override).
    - ``messages``: a non-empty list of ``{"role": ..., "content": ...}`` dictionaries in the
      OpenAI chat shape; ``content`` is a string or a list of ``{"type": "text", ...}`` parts.
    - ``stream``: true when the caller reads the answer as it arrives. Yield each piece as soon
      as you have it. When false, yield the whole answer (one piece is best). Never true for a
      provider whose ``supports_stream`` is false.
    - ``options``: :class:`~hypotez_providers.CompletionOptions`; ``options.wire()`` gives the
      fields that were set, with provider-specific extras merged in.
    - ``context``: :class:`~hypotez_providers.ProviderContext`: ``base_url``, ``api_key``,
      ``settings`` and ``transport`` (a pooled HTTP client that maps failures to typed errors).

    Yield ``str`` pieces, or :class:`~hypotez_providers.Chunk` objects when you also know the
    finish reason or token usage. Raise a :class:`~hypotez_providers.ProviderError` subclass on
    failure (the transport does this for HTTP failures); any other exception is reported as
    :class:`~hypotez_providers.PluginFailed` so routing can move on.
    """


# Observer hooks: called by the Router for every plugin that implements them (a plugin may
# implement only these, e.g. to log or export metrics). Their return values are ignored, and an
# exception raised in one is logged, never passed to the caller.


@hookspec
def on_attempt_start(provider: str, model: str, attempt: int) -> None:
    """A routed call is about to try ``provider`` with ``model``; ``attempt`` counts from 1."""


@hookspec
def on_attempt_end(
    provider: str, model: str, attempt: int, outcome: str, duration: float, error: Exception | None
) -> None:
    """A try ended: ``outcome`` is ``"ok"`` or ``"failed"``; ``duration`` in seconds.

    For a stream, ``"ok"`` means its first chunk arrived. ``error`` is the
    :class:`~hypotez_providers.ProviderError` of a failed try.
    """


@hookspec
def on_fallback(from_provider: str, to_provider: str, model: str, reason: str) -> None:
    """A routed call gives up on ``from_provider`` and moves on to ``to_provider``."""


@hookspec
def register_commands(cli: Any) -> None:
    """Add subcommands to the ``hypotez`` command: ``cli`` is its ``click.Group``.

    Called once when the command starts, for every plugin that implements it::

        @hookimpl
        def register_commands(cli):
            @cli.command()
            def hello():
                print("hello from my plugin")
    """
