"""The Anthropic provider: the Messages API, streamed over its server-sent events.

System and developer messages go to the top-level ``system`` field, consecutive messages of
one role are merged, ``max_tokens`` defaults to :data:`codec.DEFAULT_MAX_TOKENS`, and
``seed``, ``presence_penalty`` and ``frequency_penalty`` (no Messages API field) are not sent.
Tools, tool calls and results, images and structured output are mapped both ways
(:mod:`hypotez_anthropic.tools`, :mod:`hypotez_anthropic.codec`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hypotez_providers import (
    Capabilities,
    Chunk,
    CompletionOptions,
    ProviderContext,
    ProviderInfo,
    hookimpl,
    join_url,
)

from . import codec, tools

#: The Messages API version this plugin speaks.
API_VERSION = "2023-06-01"
#: Models listed by default; ``models`` in the settings replaces the list.
MODELS = (
    "claude-opus-4-1",
    "claude-opus-4-0",
    "claude-sonnet-4-5",
    "claude-sonnet-4-0",
    "claude-haiku-4-5",
    "claude-3-7-sonnet-latest",
    "claude-3-5-haiku-latest",
)
#: What every listed model can do: tools, images, prefill, and structured output.
CAPABILITIES = Capabilities(tools=True, structured_output=True, images=True, prefill=True)
#: Models without the Messages API's native structured outputs (``output_config.format``),
#: which a ``json_schema`` response format needs.
WITHOUT_STRUCTURED_OUTPUT = (
    "claude-opus-4-1",
    "claude-opus-4-0",
    "claude-sonnet-4-0",
    "claude-3-7-sonnet-latest",
    "claude-3-5-haiku-latest",
)


@hookimpl
def provider_info() -> ProviderInfo:
    """Anthropic's metadata: it needs a key, read from ANTHROPIC_API_KEY."""
    return ProviderInfo(
        name="anthropic",
        url="https://api.anthropic.com",
        models=MODELS,
        supports_stream=True,
        needs_auth=True,
        api_key_env="ANTHROPIC_API_KEY",
        # The Messages API continues a final assistant message: a broken stream can be resumed.
        capabilities=CAPABILITIES,
        model_capabilities={
            model: CAPABILITIES.model_copy(update={"structured_output": False})
            for model in WITHOUT_STRUCTURED_OUTPUT
        },
    )


@hookimpl
def create_completion(
    model: str,
    messages: list[dict[str, Any]],
    stream: bool,
    options: CompletionOptions,
    context: ProviderContext,
) -> Iterator[Chunk]:
    """POST to ``/v1/messages`` with ``x-api-key`` and ``anthropic-version``."""
    body = codec.build_request(model, messages, stream, options)
    headers = {"anthropic-version": API_VERSION}
    if context.api_key:
        headers["x-api-key"] = context.api_key
    url = join_url(context.base_url, "/v1/messages")
    answer_tool = tools.answer_tool(options)
    if stream:
        return codec.parse_stream(
            context.name,
            context.transport.post_sse(url, body, headers=headers),
            stats=context.stats,
            answer_tool=answer_tool,
        )
    return _whole(context, url, body, headers, answer_tool)


def _whole(
    context: ProviderContext,
    url: str,
    body: dict[str, Any],
    headers: dict[str, str],
    answer_tool: str | None,
) -> Iterator[Chunk]:
    # A generator, so nothing is sent before the first chunk is asked for, as when streaming.
    yield codec.parse_response(
        context.name,
        context.transport.post_json(url, body, headers=headers),
        answer_tool=answer_tool,
    )
