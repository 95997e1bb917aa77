"""OpenAI-compatible endpoints declared in the settings, as provider plugins.

``[endpoints.groq]`` with a ``base_url`` and ``models`` becomes a provider named ``groq``,
registered at start-up through the same hooks as any installed plugin, and speaking the core's
one OpenAI chat codec (:mod:`hypotez_providers.openai_chat`)::

    [endpoints.groq]
    base_url = "https://api.groq.com/openai/v1"
    api_key_env = "GROQ_API_KEY"
    models = ["llama-3.3-70b-versatile"]
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from . import openai_chat
from ._settings_secrets import settings_secrets
from .context import ProviderContext
from .hookspecs import hookimpl
from .options import CompletionOptions
from .provider_info import Capabilities, ProviderInfo
from .redaction import register_secret
from .results import Chunk
from .settings import EndpointSettings


class EndpointProvider:
    """The plugin for one ``[endpoints.NAME]`` table.

    Every value of its ``headers`` (Azure's ``api-key``, a gateway's token), its key and a
    password in its ``base_url`` are registered with the redactor as soon as it is made.
    """

    def __init__(self, name: str, endpoint: EndpointSettings) -> None:
        self.name = name
        self.endpoint = endpoint
        register_secret(*settings_secrets(endpoint))

    def __repr__(self) -> str:
        return f"EndpointProvider({self.name!r})"

    @hookimpl
    def provider_info(self) -> ProviderInfo:
        """The endpoint's name, address and models; it needs a key if one is configured."""
        endpoint = self.endpoint
        return ProviderInfo(
            name=self.name,
            url=endpoint.base_url,
            models=endpoint.models,
            supports_stream=endpoint.supports_stream,
            capabilities=Capabilities(
                tools=endpoint.tools,
                structured_output=endpoint.structured_output,
                images=endpoint.images,
                prefill=endpoint.prefill,
            ),
            needs_auth=bool(endpoint.api_key or endpoint.api_key_env),
            api_key_env=endpoint.api_key_env,
        )

    @hookimpl
    def create_completion(
        self,
        model: str,
        messages: list[dict[str, Any]],
        stream: bool,
        options: CompletionOptions,
        context: ProviderContext,
    ) -> Iterator[Chunk]:
        """A chat completion at ``base_url + path`` with the endpoint's extra headers."""
        endpoint = self.endpoint
        return openai_chat.chat_completion(
            context,
            model,
            messages,
            stream,
            options,
            path=endpoint.path,
            headers=endpoint.headers,
            include_usage=endpoint.include_usage,
        )
