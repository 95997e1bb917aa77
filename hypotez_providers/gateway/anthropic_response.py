"""Anthropic's Messages answers: the whole ``Message`` JSON, stop reasons, usage and errors.

Pure: no I/O. The model named in an answer is the one the client asked for (an alias stays an
alias); which provider answered is the gateway's business, not the client's.
"""

from __future__ import annotations

import json
from typing import Any

from ..results import Completion, Usage
from ..tools import ToolCall
from .failures import Failure, Kind

#: Anthropic's error type for each kind of failure, as its API documents them.
ERROR_TYPES: dict[Kind, str] = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "not_found": "not_found_error",
    "too_large": "request_too_large",
    "rate_limit": "rate_limit_error",
    "upstream": "api_error",
    "overloaded": "overloaded_error",
    "timeout": "timeout_error",
    "internal": "api_error",
}

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "stop_sequence": "stop_sequence",
    "content_filter": "refusal",
}


def stop_reason(finish_reason: str | None, *, called_tools: bool = False) -> str:
    """Anthropic's ``stop_reason`` for our finish reason; an answer that called tools: tool_use.

    ``stop`` is ``end_turn``: our finish reasons do not say whether a stop sequence matched
    (only a provider's own ``stop_sequence`` passes through as such); unknown ones are
    ``end_turn`` too.
    """
    if called_tools and finish_reason in (None, "stop", "tool_calls"):
        return "tool_use"
    return _STOP_REASONS.get(finish_reason or "stop", "end_turn")


def usage_body(usage: Usage | None) -> dict[str, int]:
    """``{"input_tokens": ..., "output_tokens": ...}`` from our usage (0 when unknown)."""
    if usage is None:
        return {"input_tokens": 0, "output_tokens": 0}
    return {"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens}


def tool_input(call: ToolCall) -> dict[str, Any]:
    """A call's arguments as a ``tool_use`` block's ``input`` object.

    Anthropic's ``input`` is always an object; arguments that are not a JSON object (a model's
    rare malformed output) give ``{}``.
    """
    try:
        parsed = json.loads(call.arguments or "{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def message_body(completion: Completion, *, model: str, message_id: str) -> dict[str, Any]:
    """The ``Message`` JSON for a whole answer: a text block if any text, then tool_use blocks."""
    content: list[dict[str, Any]] = []
    if completion.text:
        content.append({"type": "text", "text": completion.text})
    for call in completion.tool_calls:
        content.append(
            {"type": "tool_use", "id": call.id, "name": call.name, "input": tool_input(call)}
        )
    reason = stop_reason(completion.finish_reason, called_tools=bool(completion.tool_calls))
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": None,
        "usage": usage_body(completion.usage),
    }


def error_body(failure: Failure) -> dict[str, Any]:
    """Anthropic's error JSON: ``{"type": "error", "error": {"type": ..., "message": ...}}``."""
    return {
        "type": "error",
        "error": {"type": ERROR_TYPES.get(failure.kind, "api_error"), "message": failure.message},
    }
