"""The functional API in the seed's shape: ``create_completion(model, messages, stream, ...)``."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from .errors import InvalidInput
from .messages import Message
from .provider_info import ProviderInfo
from .registry import Registry
from .results import Chunk
from .validation import check_flag, check_provider_name

if TYPE_CHECKING:
    from .router import Router

_default_registry: Registry | None = None
_default_router: Router | None = None
_default_lock = threading.Lock()


def default_registry() -> Registry:
    """The process-wide registry, created (entry points loaded, settings read) on first use."""
    global _default_registry
    if _default_registry is None:
        with _default_lock:
            if _default_registry is None:
                _default_registry = Registry()
    return _default_registry


def default_router() -> Router:
    """The process-wide router over :func:`default_registry`, created on first use."""
    global _default_router
    if _default_router is None:
        from .router import Router

        with _default_lock:
            if _default_router is None:
                _default_router = Router(default_registry())
    return _default_router


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
    """Ask for a completion; yield the text, piece by piece when ``stream`` is true.

    With ``provider`` the call goes to that provider alone, once. Without it, the call is
    routed by model name through :func:`default_router` (or a Router over ``registry``), with
    retries and failover. Everything is checked before any request is sent
    (:class:`InvalidInput` names the field). Without ``stream`` the whole answer comes as one
    piece. ``options`` are the :class:`CompletionOptions` fields (``temperature=0.2``,
    ``max_tokens=100``, ``extra={...}``).
    """
    check_flag(stream, "stream")
    check_provider_name(provider)
    if registry is not None and not isinstance(registry, Registry):
        raise InvalidInput(
            f"registry must be a Registry or None, got {type(registry).__name__}",
            field="registry",
        )
    if stream and options.get("rescue") == "restart":
        raise InvalidInput(
            "rescue='restart' tells the caller to discard the text so far, which plain text "
            "pieces cannot say; use Router.stream (its chunks carry the reset) or "
            "rescue='continue'",
            field="rescue",
        )
    if provider is None:
        if registry is None:
            router = default_router()
        else:
            from .router import Router

            router = Router(registry)
        if stream:
            return _texts(router.stream(model, messages, **options), True)
        answer = router.complete(model, messages, **options)
        return iter((answer.text,))
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
