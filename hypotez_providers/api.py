"""The functional API in the seed's shape: ``create_completion(model, messages, stream, ...)``."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

from .errors import InvalidInput
from .messages import Message
from .provider_info import ProviderInfo
from .registry import Registry
from .results import Chunk

_default_registry: Registry | None = None
_default_lock = threading.Lock()


def default_registry() -> Registry:
    """The process-wide registry, created (entry points loaded, settings read) on first use."""
    global _default_registry
    if _default_registry is None:
        with _default_lock:
            if _default_registry is None:
                _default_registry = Registry()
    return _default_registry


def list_providers(*, registry: Registry | None = None) -> list[ProviderInfo]:
    """Metadata of every installed, working provider."""
    return (registry or default_registry()).providers()


def create_completion(
    model: str,
    messages: Sequence[Message | dict[str, Any]],
    stream: bool = False,
    provider: str | None = None,
    *,
    registry: Registry | None = None,
    **options: Any,
) -> Iterator[str]:
    """Ask ``provider`` for a completion; yield the text, piece by piece when ``stream`` is true.

    Everything is checked before any request is sent (:class:`InvalidInput` names the field).
    Without ``stream`` the whole answer comes as one piece. ``options`` are the
    :class:`CompletionOptions` fields (``temperature=0.2``, ``max_tokens=100``, ``extra={...}``).
    """
    if provider is None:
        raise InvalidInput(
            "name the provider, e.g. provider='gravityengine' (see list_providers())",
            field="provider",
        )
    chosen = (registry or default_registry()).provider(provider)
    checked_messages, checked_options = chosen.validate(model, messages, options)
    return _texts(chosen.chunks(model, checked_messages, stream, checked_options), stream)


def _texts(chunks: Iterator[Chunk], stream: bool) -> Iterator[str]:
    if stream:
        for chunk in chunks:
            if chunk.text:
                yield chunk.text
    else:
        yield "".join(chunk.text for chunk in chunks)
