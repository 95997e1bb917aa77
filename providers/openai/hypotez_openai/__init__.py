"""The OpenAI provider: Chat Completions, streamed with usage, Bearer key from OPENAI_API_KEY.

Settings (``[providers.openai]``): ``base_url`` (default ``https://api.openai.com/v1``),
``organization`` and ``project`` (sent as the ``OpenAI-Organization`` and ``OpenAI-Project``
headers), ``models`` (replaces :data:`MODELS`).
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
    openai_chat,
)

#: The chat models listed by default; ``models`` in the settings replaces the list.
MODELS = (
    "gpt-5",
    "gpt-5-mini",
    "gpt-5-nano",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4.1-nano",
    "gpt-4o",
    "gpt-4o-mini",
    "o3",
    "o4-mini",
)


@hookimpl
def provider_info() -> ProviderInfo:
    """OpenAI's metadata: it needs a key, read from OPENAI_API_KEY."""
    return ProviderInfo(
        name="openai",
        url="https://api.openai.com/v1",
        models=MODELS,
        supports_stream=True,
        needs_auth=True,
        api_key_env="OPENAI_API_KEY",
        settings_keys=("organization", "project"),
        capabilities=Capabilities(tools=True, structured_output=True, images=True),
        # o-series reasoning models take no images (and o3-mini nothing but text).
        model_capabilities={"o4-mini": Capabilities(tools=True, structured_output=True)},
    )


@hookimpl
def create_completion(
    model: str,
    messages: list[dict[str, Any]],
    stream: bool,
    options: CompletionOptions,
    context: ProviderContext,
) -> Iterator[Chunk]:
    """A chat completion; ``max_tokens`` travels as ``max_completion_tokens``."""
    if options.max_tokens is not None:
        # Current models reject max_tokens; max_completion_tokens is accepted by all of them.
        extra = {"max_completion_tokens": options.max_tokens, **options.extra}
        options = options.model_copy(update={"max_tokens": None, "extra": extra})
    return openai_chat.chat_completion(
        context,
        model,
        messages,
        stream,
        options,
        path="/chat/completions",
        headers=account_headers(context),
        include_usage=True,
    )


def account_headers(context: ProviderContext) -> dict[str, str]:
    """``OpenAI-Organization`` and ``OpenAI-Project`` from the settings, when set."""
    extra = context.settings.model_extra or {}
    headers = {}
    if extra.get("organization"):
        headers["OpenAI-Organization"] = str(extra["organization"])
    if extra.get("project"):
        headers["OpenAI-Project"] = str(extra["project"])
    return headers
