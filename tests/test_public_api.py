"""The public API is pinned: a name added or removed here is a decision, not an accident."""

from __future__ import annotations

import inspect

import hypotez_providers

PUBLIC = [
    "AllProvidersFailed",
    "Attempt",
    "AuthenticationFailed",
    "BadRequest",
    "Capabilities",
    "Chunk",
    "CircuitBreaker",
    "CircuitState",
    "Completion",
    "CompletionOptions",
    "ConfigError",
    "ConnectionFailed",
    "ConnectionRefused",
    "ContextLengthExceeded",
    "DEFAULT_MAX_BODY",
    "DEFAULT_MAX_LINE",
    "ENTRY_POINT_GROUP",
    "ErrorInfo",
    "FunctionDefinition",
    "HealthPolicy",
    "Hedge",
    "HttpTransport",
    "HypotezError",
    "ImagePart",
    "ImageURL",
    "InvalidInput",
    "LOAD_PLUGINS_ENV",
    "LegacyProvider",
    "LimitExceeded",
    "LoadStats",
    "MAX_MALFORMED_IN_A_ROW",
    "MalformedResponse",
    "MemoryCircuitBreaker",
    "MemoryLoadStats",
    "Message",
    "NamedToolChoice",
    "NotFound",
    "Overloaded",
    "PermanentError",
    "Permit",
    "PluginError",
    "PluginFailed",
    "PluginRecord",
    "Provider",
    "ProviderContext",
    "ProviderError",
    "ProviderHealth",
    "ProviderInfo",
    "ProviderSettings",
    "ProviderTimeout",
    "RateLimited",
    "Registry",
    "ResponseFormat",
    "RetryPolicy",
    "RoutedStream",
    "Router",
    "Routing",
    "SSEDecoder",
    "SSEEvent",
    "ServerError",
    "Settings",
    "Standing",
    "StreamInterrupted",
    "StreamStats",
    "TextPart",
    "Tool",
    "ToolCall",
    "ToolCallAssembler",
    "ToolCallDelta",
    "TransientError",
    "UnknownModel",
    "UnknownProvider",
    "Usage",
    "__version__",
    "create_completion",
    "default_config_path",
    "default_registry",
    "default_router",
    "describe_params",
    "hookimpl",
    "hookspec",
    "iter_sse",
    "join_url",
    "list_providers",
    "load_settings",
    "mask_secret",
    "openai_chat",
    "parse_retry_after",
    "redact",
    "redact_then_cut",
    "register_secret",
    "skip_malformed",
    "truncated_stream",
    "validate_messages",
    "validate_options",
]


def test_the_public_names_are_exactly_these():
    assert sorted(hypotez_providers.__all__) == PUBLIC


def test_every_public_class_and_function_has_a_docstring():
    undocumented = [
        name
        for name in PUBLIC
        if (
            inspect.isclass(getattr(hypotez_providers, name))
            or inspect.isfunction(getattr(hypotez_providers, name))
        )
        and not inspect.getdoc(getattr(hypotez_providers, name))
    ]
    assert undocumented == []
