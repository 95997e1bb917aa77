"""FakeOpenAI's tool calling and JSON answers: the request checks and the wire shapes.

What the real Chat Completions API checks in a request that offers tools, carries tool calls
and tool results, or asks for JSON, with its error wording; and what it answers: whole
``message.tool_calls``, or streamed ``delta.tool_calls`` pieces by index.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")
_CHOICES = ("none", "auto", "required")
_FORMATS = ("text", "json_object", "json_schema")


def error(message: str, kind: str, *, param: str | None = None, code: str | None = None) -> Any:
    """OpenAI's error object."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _invalid(message: str, param: str | None, code: str | None = None) -> tuple[int, Any]:
    return 400, error(message, "invalid_request_error", param=param, code=code)


def _missing(param: str) -> tuple[int, Any]:
    return _invalid(f"Missing required parameter: '{param}'.", param)


def tools_problem(payload: dict[str, Any]) -> tuple[int, Any] | None:
    """What the API says about ``tools``, ``tool_choice``, ``parallel_tool_calls``, or None."""
    tools = payload.get("tools")
    names: list[str] = []
    if tools is not None:
        if not isinstance(tools, list):
            return _invalid(
                "Invalid type for 'tools': expected an array, but got a value instead.",
                "tools",
                "invalid_type",
            )
        if not tools:
            return _invalid(
                "Invalid 'tools': empty array. Expected an array with minimum length 1, but got "
                "an empty array instead.",
                "tools",
                "empty_array",
            )
        for index, tool in enumerate(tools):
            problem = _tool_problem(f"tools[{index}]", tool)
            if problem is not None:
                return problem
            names.append(tool["function"]["name"])
    for option in ("tool_choice", "parallel_tool_calls"):
        if payload.get(option) is not None and not names:
            return _invalid(
                f"Invalid value for '{option}': '{option}' is only allowed when 'tools' are "
                "specified.",
                option,
            )
    choice = payload.get("tool_choice")
    if isinstance(choice, str) and choice not in _CHOICES:
        return _invalid(
            f"Invalid value: '{choice}'. Supported values are: 'none', 'auto', and 'required'.",
            "tool_choice",
            "invalid_value",
        )
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if choice.get("type") != "function" or not isinstance(name, str):
            return _missing("tool_choice.function.name")
        if name not in names:
            return _invalid(
                f"Invalid value for 'tool_choice': function '{name}' is not one of 'tools'.",
                "tool_choice",
                "invalid_value",
            )
    return None


def _tool_problem(where: str, tool: Any) -> tuple[int, Any] | None:
    if not isinstance(tool, dict) or "type" not in tool:
        return _missing(f"{where}.type")
    if tool["type"] != "function":
        return _invalid(
            f"Invalid value: '{tool['type']}'. Supported values are: 'function'.",
            f"{where}.type",
            "invalid_value",
        )
    function = tool.get("function")
    if not isinstance(function, dict):
        return _missing(f"{where}.function")
    name = function.get("name")
    if not isinstance(name, str):
        return _missing(f"{where}.function.name")
    if len(name) > 64:
        return _invalid(
            f"Invalid '{where}.function.name': string too long. Expected a string with maximum "
            f"length 64, but got a string with length {len(name)} instead.",
            f"{where}.function.name",
            "string_above_max_length",
        )
    if not _NAME.match(name):
        return _invalid(
            f"Invalid '{where}.function.name': string does not match pattern. Expected a string "
            "that matches the pattern '^[a-zA-Z0-9_-]+$'.",
            f"{where}.function.name",
            "invalid_value",
        )
    schema = function.get("parameters", {"type": "object"})
    kind = schema.get("type") if isinstance(schema, dict) else None
    if kind != "object":
        return _invalid(
            f"Invalid schema for function '{name}': schema must be a JSON Schema of 'type: "
            f'"object"\', got \'type: "{kind}"\'.',
            f"{where}.function.parameters",
            "invalid_function_parameters",
        )
    return None


def conversation_problem(messages: list[Any]) -> tuple[int, Any] | None:
    """What the API says about tool calls and tool results that do not pair up, or None.

    A ``tool`` message must answer a call of the assistant message before it (the tool
    messages of one turn follow it in a row); every call of that message must be answered.
    """
    open_calls: set[str] = set()
    calling = -1  # the index of the assistant message whose calls are being answered
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        if role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str):
                return _missing(f"messages[{index}].tool_call_id")
            if calling < 0 or call_id not in open_calls:
                return _invalid(
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'.",
                    f"messages.[{index}].role",
                )
            open_calls.discard(call_id)
            continue
        if open_calls:
            return _unanswered(calling, open_calls)
        calls = message.get("tool_calls") if role == "assistant" else None
        calling = index if calls else -1
        open_calls = {
            call["id"] for call in calls or () if isinstance(call, dict) and call.get("id")
        }
    if open_calls:
        return _unanswered(calling, open_calls)
    return None


def _unanswered(index: int, ids: set[str]) -> tuple[int, Any]:
    return _invalid(
        "An assistant message with 'tool_calls' must be followed by tool messages responding to "
        "each 'tool_call_id'. The following tool_call_ids did not have response messages: "
        + ", ".join(sorted(ids)),
        f"messages.[{index}].role",
    )


def format_problem(payload: dict[str, Any]) -> tuple[int, Any] | None:
    """What the API says about ``response_format``, or None."""
    fmt = payload.get("response_format")
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind not in _FORMATS:
        return _invalid(
            f"Invalid value: '{kind}'. Supported values are: 'text', 'json_object', and "
            "'json_schema'.",
            "response_format.type",
            "invalid_value",
        )
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict):
            return _missing("response_format.json_schema")
        if not isinstance(spec.get("name"), str):
            return _missing("response_format.json_schema.name")
    return None


def wants_json(payload: dict[str, Any]) -> bool:
    """Whether the request asks for a JSON answer."""
    fmt = payload.get("response_format")
    return isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema")


def calls_to_make(
    payload: dict[str, Any], configured: Sequence[Mapping[str, str]]
) -> list[dict[str, str]]:
    """The calls the fake answers with: none unless tools are offered and may be used.

    A named ``tool_choice`` keeps the calls of that function (one with ``{}`` if none is
    configured); ``parallel_tool_calls: false`` keeps the first.
    """
    messages = payload["messages"]
    if not configured or not payload.get("tools") or payload.get("tool_choice") == "none":
        return []
    if isinstance(messages[-1], dict) and messages[-1].get("role") == "tool":
        return []  # a tool result came back: the model answers in text
    calls = [{"name": c["name"], "arguments": c.get("arguments", "{}")} for c in configured]
    choice = payload.get("tool_choice")
    if isinstance(choice, dict):
        name = choice["function"]["name"]
        calls = [call for call in calls if call["name"] == name] or [
            {"name": name, "arguments": "{}"}
        ]
    if payload.get("parallel_tool_calls") is False:
        calls = calls[:1]
    return calls


def whole_message(ids: list[str], calls: list[dict[str, str]]) -> dict[str, Any]:
    """The ``message`` of a whole answer that calls tools."""
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": ident,
                "type": "function",
                "function": {"name": call["name"], "arguments": call["arguments"]},
            }
            for ident, call in zip(ids, calls, strict=True)
        ],
        "refusal": None,
    }


def streamed_deltas(ids: list[str], calls: list[dict[str, str]], size: int) -> list[dict[str, Any]]:
    """The ``delta`` of every event that streams the calls, parallel calls interleaved.

    Each call's first piece carries its id, type, name and empty arguments; its arguments
    follow ``size`` characters at a time (cutting tokens), and the calls take turns by index.
    """
    per_call: list[list[dict[str, Any]]] = []
    for index, (ident, call) in enumerate(zip(ids, calls, strict=True)):
        header = {
            "index": index,
            "id": ident,
            "type": "function",
            "function": {"name": call["name"], "arguments": ""},
        }
        text = call["arguments"]
        pieces = [
            {"index": index, "function": {"arguments": text[start : start + size]}}
            for start in range(0, len(text), size)
        ]
        per_call.append([header, *pieces])
    deltas: list[dict[str, Any]] = []
    for turn in range(max((len(events) for events in per_call), default=0)):
        for events in per_call:
            if turn < len(events):
                deltas.append({"tool_calls": [events[turn]]})
    return deltas
