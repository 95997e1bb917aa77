"""hypotez-providers: many LLM providers behind one interface, as pluggy plugins.

Call one provider::

    from hypotez_providers import create_completion
    for piece in create_completion("gpt-3.5-turbo-16k", [{"role": "user", "content": "Hi"}],
                                   stream=True, provider="gravityengine"):
        print(piece, end="")

Write one: see :mod:`hypotez_providers.hookspecs` and ``docs/plugins.md``.

Every public name is imported on first use (PEP 562): ``import hypotez_providers`` costs next to
nothing, and ``from hypotez_providers import X`` imports X's module and what it needs only.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import openai_chat
    from .api import create_completion, default_registry, default_router, list_providers
    from .balancing import LoadStats, MemoryLoadStats
    from .context import ProviderContext
    from .errors import (
        AllProvidersFailed,
        AuthenticationFailed,
        BadRequest,
        ConfigError,
        ConnectionFailed,
        ConnectionRefused,
        ContextLengthExceeded,
        ErrorInfo,
        HypotezError,
        InvalidInput,
        MalformedResponse,
        NotFound,
        Overloaded,
        PermanentError,
        PluginError,
        PluginFailed,
        ProviderError,
        ProviderTimeout,
        RateLimited,
        Routing,
        ServerError,
        StreamInterrupted,
        TransientError,
        UnknownModel,
        UnknownProvider,
        mask_secret,
        redact,
    )
    from .health import (
        CircuitBreaker,
        CircuitState,
        HealthPolicy,
        MemoryCircuitBreaker,
        Permit,
        ProviderHealth,
        Standing,
    )
    from .hedging import Hedge
    from .hookspecs import ENTRY_POINT_GROUP, hookimpl, hookspec
    from .legacy import LegacyProvider
    from .limits import DEFAULT_MAX_BODY, DEFAULT_MAX_LINE, LimitExceeded
    from .messages import ImagePart, ImageURL, Message, TextPart, validate_messages
    from .options import CompletionOptions, validate_options
    from .provider import Provider
    from .provider_info import Capabilities, ProviderInfo, describe_params
    from .redaction import redact_then_cut, register_secret
    from .registry import LOAD_PLUGINS_ENV, PluginRecord, Registry
    from .results import Attempt, Chunk, Completion, Usage
    from .retry_after import parse_retry_after
    from .routed_stream import RoutedStream
    from .router import Router
    from .settings import (
        ProviderSettings,
        RetryPolicy,
        Settings,
        default_config_path,
        load_settings,
    )
    from .sse import SSEDecoder, SSEEvent, iter_sse
    from .tolerance import MAX_MALFORMED_IN_A_ROW, StreamStats, skip_malformed, truncated_stream
    from .tools import (
        FunctionDefinition,
        NamedToolChoice,
        ResponseFormat,
        Tool,
        ToolCall,
        ToolCallAssembler,
        ToolCallDelta,
    )
    from .transport import HttpTransport
    from .urls import join_url

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MAX_BODY",
    "DEFAULT_MAX_LINE",
    "ENTRY_POINT_GROUP",
    "LOAD_PLUGINS_ENV",
    "MAX_MALFORMED_IN_A_ROW",
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
    "ErrorInfo",
    "FunctionDefinition",
    "HealthPolicy",
    "Hedge",
    "HttpTransport",
    "HypotezError",
    "ImagePart",
    "ImageURL",
    "InvalidInput",
    "LegacyProvider",
    "LimitExceeded",
    "LoadStats",
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

#: The module each public name lives in (a module of the same name is the name itself).
_HOMES: dict[str, str] = {
    "AllProvidersFailed": "errors",
    "Attempt": "results",
    "AuthenticationFailed": "errors",
    "BadRequest": "errors",
    "Capabilities": "provider_info",
    "Chunk": "results",
    "CircuitBreaker": "health",
    "CircuitState": "health",
    "Completion": "results",
    "CompletionOptions": "options",
    "ConfigError": "errors",
    "ConnectionFailed": "errors",
    "ConnectionRefused": "errors",
    "ContextLengthExceeded": "errors",
    "DEFAULT_MAX_BODY": "limits",
    "DEFAULT_MAX_LINE": "limits",
    "ENTRY_POINT_GROUP": "hookspecs",
    "ErrorInfo": "errors",
    "FunctionDefinition": "tools",
    "HealthPolicy": "health",
    "Hedge": "hedging",
    "HttpTransport": "transport",
    "HypotezError": "errors",
    "ImagePart": "messages",
    "ImageURL": "messages",
    "InvalidInput": "errors",
    "LOAD_PLUGINS_ENV": "registry",
    "LegacyProvider": "legacy",
    "LimitExceeded": "limits",
    "LoadStats": "balancing",
    "MAX_MALFORMED_IN_A_ROW": "tolerance",
    "MalformedResponse": "errors",
    "MemoryCircuitBreaker": "health",
    "MemoryLoadStats": "balancing",
    "Message": "messages",
    "NamedToolChoice": "tools",
    "NotFound": "errors",
    "Overloaded": "errors",
    "PermanentError": "errors",
    "Permit": "health",
    "PluginError": "errors",
    "PluginFailed": "errors",
    "PluginRecord": "registry",
    "Provider": "provider",
    "ProviderContext": "context",
    "ProviderError": "errors",
    "ProviderHealth": "health",
    "ProviderInfo": "provider_info",
    "ProviderSettings": "settings",
    "ProviderTimeout": "errors",
    "RateLimited": "errors",
    "Registry": "registry",
    "ResponseFormat": "tools",
    "RetryPolicy": "settings",
    "RoutedStream": "routed_stream",
    "Router": "router",
    "Routing": "errors",
    "SSEDecoder": "sse",
    "SSEEvent": "sse",
    "ServerError": "errors",
    "Settings": "settings",
    "Standing": "health",
    "StreamInterrupted": "errors",
    "StreamStats": "tolerance",
    "TextPart": "messages",
    "Tool": "tools",
    "ToolCall": "tools",
    "ToolCallAssembler": "tools",
    "ToolCallDelta": "tools",
    "TransientError": "errors",
    "UnknownModel": "errors",
    "UnknownProvider": "errors",
    "Usage": "results",
    "create_completion": "api",
    "default_config_path": "settings",
    "default_registry": "api",
    "default_router": "api",
    "describe_params": "provider_info",
    "hookimpl": "hookspecs",
    "hookspec": "hookspecs",
    "iter_sse": "sse",
    "join_url": "urls",
    "list_providers": "api",
    "load_settings": "settings",
    "mask_secret": "errors",
    "openai_chat": "openai_chat",
    "parse_retry_after": "retry_after",
    "redact": "errors",
    "redact_then_cut": "redaction",
    "register_secret": "redaction",
    "skip_malformed": "tolerance",
    "truncated_stream": "tolerance",
    "validate_messages": "messages",
    "validate_options": "options",
}


def __getattr__(name: str) -> Any:
    """Import a public name on first use, then keep it as a plain attribute."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{home}")
    value = module if home == name else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names too, loaded or not."""
    return sorted(set(globals()) | set(__all__))
