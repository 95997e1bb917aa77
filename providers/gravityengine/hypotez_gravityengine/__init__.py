"""The Gravityengine provider: an OpenAI-style chat endpoint, no key, real streaming."""

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
    openai_chat,
)

#: Where the chat endpoint sits under the base URL.
CHAT_PATH = "/api/openai/v1/chat/completions"
#: What the original module always sent; a caller's options override them.
DEFAULTS = {"temperature": 0.7, "presence_penalty": 0}


@hookimpl
def provider_info() -> ProviderInfo:
    """Gravityengine's metadata, as the original module declared it."""
    return ProviderInfo(
        name="gravityengine",
        url="https://gpt4.xunika.uk",
        models=("gpt-3.5-turbo-16k", "gpt-3.5-turbo-0613"),
        supports_stream=True,
        needs_auth=False,
        # OpenAI's chat format passes through: tools and JSON answers, as gpt-3.5 takes them.
        capabilities=Capabilities(tools=True, structured_output=True),
    )


@hookimpl
def create_completion(
    model: str,
    messages: list[dict[str, Any]],
    stream: bool,
    options: CompletionOptions,
    context: ProviderContext,
) -> Iterator[Chunk]:
    """POST the OpenAI chat payload to the Gravityengine endpoint; stream it over SSE if asked."""
    return openai_chat.chat_completion(
        context, model, messages, stream, options, path=CHAT_PATH, defaults=DEFAULTS
    )
