"""A registered provider, bound to its hook implementation, settings and HTTP transport."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import requests

from .context import ProviderContext
from .errors import (
    InvalidInput,
    MalformedResponse,
    PluginFailed,
    ProviderError,
    UnknownModel,
    redact,
)
from .messages import Message, validate_messages
from .options import CompletionOptions, validate_options
from .provider_info import ProviderInfo
from .provider_settings import ProviderSettings
from .redaction import logger_for, scrub
from .results import Chunk, Completion
from .validation import check_model

logger = logger_for("hypotez_providers.provider")


class Provider:
    """One provider ready to answer: ``stream()`` yields chunks, ``complete()`` a Completion.

    Get one from :meth:`Registry.provider`. Calls go straight to this provider's own hook
    implementation: no other plugin is called.
    """

    __slots__ = ("_argnames", "_function", "context", "info", "models")

    def __init__(
        self,
        info: ProviderInfo,
        settings: ProviderSettings,
        function: Callable[..., Any],
        argnames: Sequence[str],
    ) -> None:
        self.info = info
        self.context = ProviderContext(info, settings)
        #: The model names it serves: the settings' ``models`` if given, else the plugin's.
        self.models: tuple[str, ...] = settings.models or info.models
        self._function = function
        self._argnames = tuple(argnames)

    def __repr__(self) -> str:
        return f"Provider({self.name!r})"

    @property
    def name(self) -> str:
        """The provider's name."""
        return self.info.name

    @property
    def settings(self) -> ProviderSettings:
        """The effective settings (file and environment merged)."""
        return self.context.settings

    def stream(
        self, model: str, messages: Sequence[Message | dict[str, Any]], **options: Any
    ) -> Iterator[Chunk]:
        """Validate the request, then yield the answer's chunks as they arrive.

        Raises :class:`InvalidInput` at once for bad input, before any request is sent; a
        provider that cannot stream yields its whole answer as one chunk.
        """
        checked = self.validate(model, messages, options)
        return self.chunks(model, checked[0], True, checked[1])

    def complete(
        self, model: str, messages: Sequence[Message | dict[str, Any]], **options: Any
    ) -> Completion:
        """Validate the request, send it without streaming, and return the whole answer."""
        checked_messages, checked_options = self.validate(model, messages, options)
        chunks = self.chunks(model, checked_messages, False, checked_options)
        return Completion.from_chunks(chunks, model=model, provider=self.name)

    def validate(
        self, model: str, messages: Sequence[Message | dict[str, Any]], options: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], CompletionOptions]:
        """Check the model, messages and options; return them as the hook receives them."""
        check_model(model)
        if model not in self.models:
            close = difflib.get_close_matches(model, self.models, n=3, cutoff=0.4)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise UnknownModel(
                f"model {model!r} is not served by provider {self.name!r} (it serves "
                f"{', '.join(self.models)}){hint}",
                field="model",
            )
        return validate_messages(messages), validate_options(options)

    def chunks(
        self,
        model: str,
        messages: list[dict[str, Any]],
        stream: bool,
        options: CompletionOptions,
        *,
        context: ProviderContext | None = None,
    ) -> Iterator[Chunk]:
        """Call the hook with already validated arguments; yield :class:`Chunk` objects.

        The router's entry point: no validation here. ``context`` replaces the provider's own
        (the router passes one with timeouts bounded by the call's deadline). Whatever the
        plugin raises, when called or while its answer is read, leaves as a
        :class:`ProviderError` naming this provider (any other exception, ``SystemExit`` and
        other ``BaseException`` included, as :class:`PluginFailed`); only ``KeyboardInterrupt``
        and the caller's own ``InvalidInput`` pass through.
        """
        context = context or self.context
        arguments = {
            "model": model,
            "messages": messages,
            "stream": stream and self.info.supports_stream,
            "options": options,
            "context": context,
        }
        try:
            result = self._function(*[arguments[name] for name in self._argnames])
            if result is None:
                raise PluginFailed(self.name, "create_completion returned nothing (None)")
            pieces = iter((result,) if isinstance(result, (str, Chunk)) else result)
        except BaseException as error:  # noqa: BLE001 - sorted by _failure
            failure = self._failure(error, context)
        else:
            # A whole answer is held in memory by whoever asked for it: bound what it adds up to.
            left = None if stream else context.settings.max_body
            at_yield = False  # an exception arriving at our yield is our reader's, not the plugin's
            name = self.name
            try:
                for piece in pieces:
                    chunk = piece if type(piece) is Chunk else _as_chunk(name, piece)
                    if left is not None:
                        left -= len(chunk.text)
                        if left < 0:
                            raise MalformedResponse(
                                name,
                                f"the whole answer is over the {context.settings.max_body:,}-"
                                "character limit (max_body)",
                            )
                    at_yield = True
                    yield chunk
                    at_yield = False
                return
            except BaseException as error:  # sorted by _failure below
                _close_quietly(name, pieces)
                if at_yield:
                    raise  # our reader stopped or failed: the plugin's answer stops too
                failure = self._failure(error, context)
        # Raised outside the handler, so the plugin's own exception (it may hold the key) is
        # neither the cause nor the context of the error the caller sees.
        raise failure

    def _failure(self, error: BaseException, context: ProviderContext) -> ProviderError:
        """The error to raise for what the plugin raised; the caller's own errors re-raised.

        ``KeyboardInterrupt`` and the plugin's :class:`InvalidInput` (the caller's input is
        unusable: the caller's to fix) pass through, the latter with any secret in it hidden.
        """
        if isinstance(error, KeyboardInterrupt):
            raise error
        if isinstance(error, InvalidInput):
            raise scrub(error, context.secrets)  # its message may quote a key
        if isinstance(error, ProviderError):
            # Raised in the plugin's own parsing, it may not have passed the transport's
            # redaction; and it may carry the exception it replaced.
            return scrub(error, context.secrets)
        if isinstance(error, requests.RequestException):
            # A plugin that calls requests itself (the legacy style) still gets typed errors.
            return context.transport.translate(error)
        detail = redact(f"{type(error).__name__}: {error}", context.secrets)
        return PluginFailed(self.name, detail)


def _as_chunk(provider: str, piece: Any) -> Chunk:
    if type(piece) is str:
        return Chunk(text=piece)
    if isinstance(piece, Chunk):
        return piece
    if isinstance(piece, bytes):
        return Chunk(text=piece.decode("utf-8", "replace"))
    raise PluginFailed(
        provider, f"create_completion yielded {type(piece).__name__}; yield str or Chunk"
    )


def _close_quietly(provider: str, pieces: Iterator[Any]) -> None:
    """Close a plugin's generator; whatever its clean-up raises is logged, never passed on."""
    close = getattr(pieces, "close", None)
    if close is None:
        return
    try:
        close()
    except KeyboardInterrupt:
        raise
    except BaseException:  # noqa: BLE001 - a plugin's clean-up must not replace our exit
        logger.warning("provider %s raised while its answer was closed; ignored", provider)
