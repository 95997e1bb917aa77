"""The Gravityengine provider: an OpenAI-style chat endpoint, no key, real streaming."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hypotez_providers import (
    Capabilities,
    Chunk,
    CompletionOptions,
    ConnectionFailed,
    ProviderContext,
    ProviderInfo,
    hookimpl,
    openai_chat,
)

#: Where the chat endpoint sits under the base URL.
CHAT_PATH = "/api/openai/v1/chat/completions"
#: Where Gravityengine answered; that host is gone, so connecting to it fails.
HISTORICAL_URL = "https://gpt4.xunika.uk"
#: What the original module always sent; a caller's options override them.
DEFAULTS = {"temperature": 0.7, "presence_penalty": 0}


@hookimpl
def provider_info() -> ProviderInfo:
    """Gravityengine's metadata, as the original module declared it."""
    return ProviderInfo(
        name="gravityengine",
        url=HISTORICAL_URL,
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
    try:
        chunks = openai_chat.chat_completion(
            context, model, messages, stream, options, path=CHAT_PATH, defaults=DEFAULTS
        )
    except ConnectionFailed as problem:
        raise explain_unreachable(problem, context.base_url) from problem
    return _explaining(chunks, context.base_url)


def explain_unreachable(problem: ConnectionFailed, base_url: str) -> ConnectionFailed:
    """``problem`` saying, when ``base_url`` is the historical host, that it is gone and what to do.

    The same error type (so routing and retries are unchanged) with the advice added; at any
    other base URL, ``problem`` itself.
    """
    if base_url.rstrip("/") != HISTORICAL_URL:
        return problem
    return type(problem)(
        problem.provider,
        f"{problem.upstream_message}: Gravityengine's historical host {HISTORICAL_URL} is gone; "
        "point the provider at another server with HYPOTEZ_GRAVITYENGINE_BASE_URL=URL (or "
        "base_url in [providers.gravityengine]), or run `hypotez fake --format gravityengine` "
        "for a local stand-in",
        status=problem.status,
        retry_after=problem.retry_after,
    )


def _explaining(chunks: Iterator[Chunk], base_url: str) -> Iterator[Chunk]:
    try:
        yield from chunks
    except ConnectionFailed as problem:
        raise explain_unreachable(problem, base_url) from problem
