"""The Ollama provider: a local (or remote) Ollama server's native ``/api/chat``, over NDJSON.

Settings (``[providers.ollama]``): ``base_url`` (default ``http://localhost:11434``) and
``models``, which replaces :data:`MODELS`: list the models you have pulled, exactly as you call
them (``llama3.2`` and ``llama3.2:latest`` are the same model to Ollama, not to the registry).
:func:`discover_models` asks the server which models it has (``GET /api/tags``), on request.
No key is needed; one set anyway (``HYPOTEZ_OLLAMA_API_KEY``) is sent as a Bearer token, for a
server behind an authenticating proxy. Request and response mapping: :mod:`hypotez_ollama.codec`.

Tools, structured output and images (the capabilities this plugin declares):

- ``tools`` go in OpenAI's function shape, which Ollama takes (``strict`` left out). Ollama has
  no ``tool_choice``: ``"none"`` sends no tools; a named function sends only that tool, so the
  model can call nothing else (it may still answer in text); ``"required"`` is sent as
  ``"auto"`` is, the model decides. ``parallel_tool_calls`` has no Ollama field and is dropped.
- An assistant's ``tool_calls`` go as ``{"id", "function": {"index", "name", "arguments"}}``
  with the arguments as a JSON object; a ``tool`` result goes with ``tool_name`` (the called
  function, found by its call id) and ``tool_call_id``.
- Answers: ``message.tool_calls`` (arguments an object) become ``ToolCall`` objects whose
  arguments are that object's JSON text; the call keeps Ollama's ``id``, or, from a server
  that sends none, gets ``call_<index>``. The finish reason is ``"tool_calls"`` (Ollama says
  ``"stop"``). Streamed, each call arrives whole in one line, and comes out as deltas at once;
  the ``done`` chunk carries the assembled calls.
- ``response_format``: ``json_object`` is sent as ``format: "json"``, ``json_schema`` as
  ``format: <the schema>``; the answer's text is the JSON.
- Images: the base64 data of ``data:`` URLs in ``images``; an ``https:`` image is dropped, as
  Ollama cannot fetch one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hypotez_providers import (
    Capabilities,
    Chunk,
    CompletionOptions,
    MalformedResponse,
    Provider,
    ProviderContext,
    ProviderInfo,
    hookimpl,
    join_url,
    openai_chat,
)

from . import codec

#: Where the chat endpoint sits under the base URL.
CHAT_PATH = "/api/chat"
#: Where the list of installed models sits under the base URL.
TAGS_PATH = "/api/tags"
#: Popular models from Ollama's library, listed by default. What a server really serves is what
#: its user has pulled: ``models`` in the settings replaces this list (see :func:`discover_models`).
MODELS = (
    "llama3.2",
    "llama3.1",
    "llama3.3",
    "qwen3",
    "qwen2.5",
    "qwen2.5-coder",
    "gemma3",
    "mistral",
    "phi4",
    "deepseek-r1",
    "llava",
)


@hookimpl
def provider_info() -> ProviderInfo:
    """Ollama's metadata: a local server, no key, streaming, tools, JSON schemas and images."""
    return ProviderInfo(
        name="ollama",
        url="http://localhost:11434",
        models=MODELS,
        supports_stream=True,
        needs_auth=False,
        capabilities=Capabilities(tools=True, structured_output=True, images=True),
    )


@hookimpl
def create_completion(
    model: str,
    messages: list[dict[str, Any]],
    stream: bool,
    options: CompletionOptions,
    context: ProviderContext,
) -> Iterator[Chunk]:
    """POST the chat to ``/api/chat``: NDJSON lines when streaming, one JSON object otherwise.

    ``"stream"`` is always sent, since Ollama streams unless told not to. Nothing is sent until
    the first chunk is asked for.
    """
    payload = codec.build_payload(model, messages, stream, options)
    url = join_url(context.base_url, CHAT_PATH)
    headers = openai_chat.bearer_headers(context)
    if stream:
        return codec.parse_stream(
            context.name,
            context.transport.post_ndjson(url, payload, headers=headers, stats=context.stats),
            stats=context.stats,
        )
    return _whole(context, url, payload, headers)


def _whole(
    context: ProviderContext, url: str, payload: dict[str, Any], headers: dict[str, str]
) -> Iterator[Chunk]:
    yield codec.parse_response(
        context.name, context.transport.post_json(url, payload, headers=headers)
    )


def discover_models(provider: Provider) -> list[str]:
    """The names of the models the Ollama server has pulled, from ``GET /api/tags``.

    Pass the registry's provider (``registry.provider("ollama")``): its base URL, timeouts and
    key are used. Raises the transport's typed errors (``ConnectionRefused`` when no server
    runs) and :class:`MalformedResponse` when the answer is not Ollama's model list.
    """
    context = provider.context
    headers = openai_chat.bearer_headers(context)
    body = context.transport.get_json(join_url(context.base_url, TAGS_PATH), headers=headers)
    models = body.get("models") if isinstance(body, dict) else None
    if not isinstance(models, list) or not all(
        isinstance(entry, dict) and isinstance(entry.get("name"), str) for entry in models
    ):
        raise MalformedResponse(
            context.name, f"{TAGS_PATH} did not answer a model list: {str(body)[:200]}", status=200
        )
    return [entry["name"] for entry in models]
