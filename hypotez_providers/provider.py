"""A registered provider, bound to its hook implementation, settings and HTTP transport."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import requests

from .context import ProviderContext
from .errors import InvalidInput, PluginFailed, ProviderError, UnknownModel, redact
from .messages import Message, validate_messages
from .options import CompletionOptions, validate_options
from .provider_info import ProviderInfo
from .results import Chunk, Completion
from .settings import ProviderSettings


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
        plugin raises leaves as a :class:`ProviderError` naming this provider.
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
            if isinstance(result, (str, Chunk)):
                result = (result,)
            yield from _as_chunks(self.name, result)
        except ProviderError as error:
            key = self.context.api_key
            if key and len(key) >= 4 and key in error.upstream_message:
                # Errors raised in a plugin's own parsing (a mid-stream error event) did not
                # pass the transport's scrubbing; no error leaves a provider with its key.
                raise type(error)(
                    error.provider,
                    redact(error.upstream_message, (key,)),
                    status=error.status,
                    retry_after=error.retry_after,
                ) from None
            raise
        except InvalidInput:
            raise  # the plugin found the caller's input unusable: the caller's to fix
        except requests.RequestException as error:
            # A plugin that calls requests itself (the legacy style) still gets typed errors.
            raise context.transport.translate(error) from None
        except Exception as error:
            detail = redact(f"{type(error).__name__}: {error}", (self.context.api_key,))
            raise PluginFailed(self.name, detail) from error


def _as_chunks(provider: str, pieces: Iterable[Any]) -> Iterator[Chunk]:
    for piece in pieces:
        if type(piece) is str:
            yield Chunk(text=piece)
        elif isinstance(piece, Chunk):
            yield piece
        elif isinstance(piece, bytes):
            yield Chunk(text=piece.decode("utf-8", "replace"))
        else:
            raise PluginFailed(
                provider, f"create_completion yielded {type(piece).__name__}; yield str or Chunk"
            )
