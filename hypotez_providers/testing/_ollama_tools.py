"""FakeOllama's tool calling and JSON answers: the request checks and the wire shapes.

What Ollama's ``/api/chat`` refuses in a request that offers tools, carries tool calls or asks
for a ``format`` (its Go JSON decoder's wording, or the runner's for a bad format), and what
it answers: ``message.tool_calls`` whole, each call's arguments a JSON object.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

_FORMAT_ERROR = 'invalid format: %s; expected "json" or a valid JSON Schema object'


def _cannot_unmarshal(value: Any, field: str, go_type: str) -> tuple[int, Any]:
    kind = {dict: "object", list: "array", str: "string", bool: "bool"}.get(type(value), "number")
    if value is None:
        kind = "null"
    return 400, {
        "error": f"json: cannot unmarshal {kind} into Go struct field {field} of type {go_type}"
    }


def tools_problem(payload: dict[str, Any]) -> tuple[int, Any] | None:
    """What Ollama says about ``tools`` that its decoder cannot read, or None."""
    tools = payload.get("tools")
    if tools is None:
        return None
    if not isinstance(tools, list):
        return _cannot_unmarshal(tools, "ChatRequest.tools", "api.Tools")
    for tool in tools:
        if not isinstance(tool, dict):
            return _cannot_unmarshal(tool, "ChatRequest.tools", "api.Tool")
        function = tool.get("function")
        if not isinstance(function, dict):
            return _cannot_unmarshal(function, "ChatRequest.tools.function", "api.ToolFunction")
        if not isinstance(function.get("name"), str):
            return _cannot_unmarshal(
                function.get("name"), "ChatRequest.tools.function.name", "string"
            )
        parameters = function.get("parameters", {})
        if not isinstance(parameters, dict):
            return _cannot_unmarshal(
                parameters, "ChatRequest.tools.function.parameters", "api.ToolFunctionParameters"
            )
    return None


def messages_problem(messages: list[Any]) -> tuple[int, Any] | None:
    """What Ollama says about an assistant's ``tool_calls`` it cannot read, or None.

    Ollama takes a call's ``arguments`` as a JSON object; OpenAI's JSON text is refused.
    """
    for message in messages:
        calls = message.get("tool_calls") if isinstance(message, dict) else None
        if calls is None:
            continue
        if not isinstance(calls, list):
            return _cannot_unmarshal(calls, "Message.messages.tool_calls", "[]api.ToolCall")
        for call in calls:
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict):
                return _cannot_unmarshal(
                    function, "ToolCall.messages.tool_calls.function", "api.ToolCallFunction"
                )
            arguments = function.get("arguments", {})
            if not isinstance(arguments, dict):
                return _cannot_unmarshal(
                    arguments,
                    "ToolCallFunction.messages.tool_calls.function.arguments",
                    "map[string]interface {}",
                )
    return None


def format_problem(payload: dict[str, Any]) -> tuple[int, Any] | None:
    """What Ollama's runner says about a ``format`` that is neither "json" nor a schema."""
    fmt = payload.get("format")
    if fmt is None or fmt in ("", "json") or isinstance(fmt, dict):
        return None
    return 500, {"error": _FORMAT_ERROR % json.dumps(json.dumps(fmt))}


def wants_json(payload: dict[str, Any]) -> bool:
    """Whether the request asks for a JSON answer (``format`` "json" or a schema)."""
    fmt = payload.get("format")
    return fmt == "json" or isinstance(fmt, dict)


def calls_to_make(
    payload: dict[str, Any], configured: Sequence[Mapping[str, str]]
) -> list[dict[str, Any]]:
    """The calls to answer with, their arguments decoded into objects.

    None without tools or after a tool result; else the configured calls whose function is
    offered (Ollama has no ``tool_choice``: offering one function is how to insist on it).
    """
    tools = payload.get("tools") or []
    messages = payload["messages"]
    if not configured or not tools:
        return []
    if isinstance(messages[-1], dict) and messages[-1].get("role") == "tool":
        return []  # a tool result came back: the model answers in text
    offered = {tool["function"]["name"] for tool in tools}
    return [
        {"name": call["name"], "arguments": json.loads(call.get("arguments") or "{}")}
        for call in configured
        if call["name"] in offered
    ]


def message_with_calls(ids: Sequence[str | None], calls: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``message`` of a line that calls tools, as Ollama writes it (an id when given)."""
    wire = []
    for index, (ident, call) in enumerate(zip(ids, calls, strict=True)):
        entry: dict[str, Any] = {}
        if ident is not None:
            entry["id"] = ident
        entry["function"] = {"index": index, "name": call["name"], "arguments": call["arguments"]}
        wire.append(entry)
    return {"role": "assistant", "content": "", "tool_calls": wire}
